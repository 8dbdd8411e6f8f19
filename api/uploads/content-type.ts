import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { fileTypeFromStream } from 'file-type';

export const OCTET_STREAM = 'application/octet-stream';
export const TEXT_PLAIN = 'text/plain';

/**
 * Image types a browser renders without running anything, so they may be
 * served `inline` (for `<img src>`). SVG is absent on purpose: it can carry script.
 */
const INLINE_SAFE = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif']);

/** Whether a stored file of this type may be shown inline rather than downloaded. */
export function isInlineSafe(contentType: string): boolean {
  return INLINE_SAFE.has(contentType);
}

/**
 * A pass-through that watches whether the bytes are plain UTF-8 text, so a
 * text file can be told apart from unknown binary data without reading it
 * again. Text means valid UTF-8 with no control characters other than
 * tab, line feed, form feed and carriage return.
 */
export class TextProbe extends Transform {
  #decoder = new TextDecoder('utf-8', { fatal: true });
  #text = true;
  #bytes = 0;

  /** Meaningful once the stream has ended. */
  get isText(): boolean {
    return this.#text && this.#bytes > 0;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
    this.#bytes += chunk.length;
    if (this.#text) this.#check(chunk, true);
    done(null, chunk);
  }

  override _flush(done: TransformCallback) {
    if (this.#text) this.#check(new Uint8Array(0), false);
    done();
  }

  #check(chunk: Uint8Array, more: boolean) {
    try {
      const decoded = this.#decoder.decode(chunk, { stream: more });
      // eslint-disable-next-line no-control-regex
      if (/[\x00-\x08\x0b\x0e-\x1f\x7f]/.test(decoded)) this.#text = false;
    } catch {
      this.#text = false;
    }
  }
}

/**
 * The media type of stored bytes, from their content only: the client's
 * declared type and file name are never consulted. Known binary formats by
 * magic number (file-type), otherwise `text/plain` for UTF-8 text, otherwise
 * `application/octet-stream`.
 */
export async function detectContentType(bytes: () => Promise<Readable>, isText: boolean): Promise<string> {
  const stream = await bytes();
  try {
    const detected = await fileTypeFromStream(stream);
    if (detected) return detected.mime;
  } finally {
    stream.destroy();
  }
  return isText ? TEXT_PLAIN : OCTET_STREAM;
}
