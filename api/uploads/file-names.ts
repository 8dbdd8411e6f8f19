/** Longest stored file name, in characters (code points). */
export const MAX_NAME_LENGTH = 200;

const FALLBACK = 'file';
const EXTENSION = /\.[\p{L}\p{N}]{1,16}$/u;
// Windows refuses these as file names whatever the extension; users save downloads there.
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$/i;

/**
 * Makes a client-supplied file name safe to store, show and offer as a
 * download name: only the last path segment, no control or invisible
 * formatting characters (bidi overrides disguise `gnp.exe` as `exe.png`), no
 * characters file systems reject, no leading dots (hidden files, `..`),
 * at most {@link MAX_NAME_LENGTH} characters keeping the extension.
 * Falls back to `file`. The result is display data only: it never names
 * anything on disk.
 */
export function sanitizeFileName(raw: string | undefined | null): string {
  let name = (raw ?? '').normalize('NFC');
  name = name.split(/[/\\]/).pop() ?? '';
  name = name
    .replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, '')
    .replace(/[<>:"|?*]/g, '_')
    .replace(/\s+/gu, ' ')
    .replace(/^[\s.]+|[\s.]+$/gu, '');
  if (WINDOWS_RESERVED.test(name)) name = `_${name}`;
  const chars = [...name];
  if (chars.length > MAX_NAME_LENGTH) {
    const ext = EXTENSION.exec(name)?.[0] ?? '';
    const stem = chars.slice(0, MAX_NAME_LENGTH - ext.length).join('').replace(/[\s.]+$/u, '');
    name = stem ? `${stem}${ext}` : FALLBACK;
  }
  return name || FALLBACK;
}

/**
 * A `Content-Disposition` value with an ASCII `filename` for old clients and
 * the exact name as RFC 5987 `filename*`.
 */
export function contentDisposition(kind: 'inline' | 'attachment', name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
