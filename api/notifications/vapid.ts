import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import webpush from 'web-push';

/** The application server's identity towards push services (RFC 8292). */
export interface VapidKeys {
  publicKey: string;
  privateKey: string;
  /** A mailto: or https: contact push services can reach. */
  subject: string;
}

/**
 * The VAPID key pair: VAPID_PUBLIC_KEY/VAPID_PRIVATE_KEY when set; otherwise,
 * outside production, a pair generated once and kept in the data folder (so
 * browser subscriptions survive restarts). Null in production without keys:
 * Web Push is then off.
 */
export async function resolveVapidKeys(options: {
  publicKey?: string | undefined;
  privateKey?: string | undefined;
  subject: string;
  dataDir: string;
  production: boolean;
}): Promise<VapidKeys | null> {
  if (options.publicKey && options.privateKey) {
    return { publicKey: options.publicKey, privateKey: options.privateKey, subject: options.subject };
  }
  if (options.production) return null;
  const dir = resolve(options.dataDir);
  const path = join(dir, 'vapid.json');
  const stored = await readFile(path, 'utf8').then(
    (text) => JSON.parse(text) as Partial<VapidKeys>,
    () => ({}) as Partial<VapidKeys>,
  );
  if (stored.publicKey && stored.privateKey) return { publicKey: stored.publicKey, privateKey: stored.privateKey, subject: options.subject };
  const generated = webpush.generateVAPIDKeys();
  await mkdir(dir, { recursive: true });
  await writeFile(path, JSON.stringify(generated), { mode: 0o600 });
  return { ...generated, subject: options.subject };
}
