import type { ReactNode } from 'react';

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+/gi;
/** Punctuation that usually ends a sentence rather than a URL. */
const TRAILING = /[.,;:!?)\]}'"]+$/;

/** An http(s) URL as a safe href, or null (javascript:, data:, malformed…). */
export function safeHref(candidate: string): string | null {
  try {
    const url = new URL(candidate);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

/**
 * A message body as React text nodes, with http(s) URLs turned into links.
 * Nothing is ever parsed as HTML: React escapes every string it renders.
 */
export function linkify(body: string): ReactNode[] {
  const out: ReactNode[] = [];
  let last = 0;
  for (const match of body.matchAll(URL_PATTERN)) {
    const start = match.index ?? 0;
    let text = match[0];
    const trailing = TRAILING.exec(text)?.[0] ?? '';
    text = text.slice(0, text.length - trailing.length);
    const href = safeHref(text);
    if (!href) continue;
    if (start > last) out.push(body.slice(last, start));
    out.push(
      <a key={start} href={href} target="_blank" rel="noopener noreferrer">
        {text}
      </a>,
    );
    last = start + text.length;
  }
  if (last < body.length) out.push(body.slice(last));
  return out;
}
