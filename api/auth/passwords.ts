import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { PasswordHasher } from '../../schema/context.ts';

function scrypt(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

const KEYLEN = 64;

/**
 * scrypt, a memory-hard KDF built into Node. Stored as
 * `scrypt$N$r$p$salt$hash` (base64) so parameters can be raised later
 * without invalidating existing hashes. N=2^15, r=8 uses 32 MiB per hash.
 */
export function createPasswordHasher(params = { N: 2 ** 15, r: 8, p: 1 }): PasswordHasher {
  const maxmem = 256 * params.N * params.r;
  return {
    async hash(password) {
      const salt = randomBytes(16);
      const key = await scrypt(password.normalize('NFKC'), salt, KEYLEN, { ...params, maxmem });
      return ['scrypt', params.N, params.r, params.p, salt.toString('base64'), key.toString('base64')].join('$');
    },
    async verify(password, stored) {
      const [kind, n, r, p, salt, hash] = stored.split('$');
      if (kind !== 'scrypt' || !salt || !hash) return false;
      const expected = Buffer.from(hash, 'base64');
      const options = { N: Number(n), r: Number(r), p: Number(p), maxmem: 256 * Number(n) * Number(r) };
      const key = await scrypt(password.normalize('NFKC'), Buffer.from(salt, 'base64'), expected.length, options);
      return timingSafeEqual(key, expected);
    },
  };
}
