// http_ece ships no types; only what the tests call is declared.
declare module 'http_ece' {
  import type { ECDH } from 'node:crypto';

  export interface EceParams {
    version: 'aes128gcm' | 'aesgcm' | 'aesgcm128';
    /** The receiver's key pair (aes128gcm reads the sender's public key from the record header). */
    privateKey?: ECDH;
    /** The subscription's 16-byte authentication secret, as bytes or URL-safe base64. */
    authSecret?: Buffer | string;
    dh?: Buffer | string;
    salt?: Buffer | string;
    keyid?: string;
    keymap?: Record<string, ECDH>;
    rs?: number;
  }

  export function decrypt(buffer: Buffer, params: EceParams): Buffer;
  export function encrypt(buffer: Buffer, params: EceParams): Buffer;
  const ece: { decrypt: typeof decrypt; encrypt: typeof encrypt };
  export default ece;
}
