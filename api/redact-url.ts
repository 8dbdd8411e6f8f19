/** A URL fit for logs: the password is replaced; `fallback` when it does not parse. */
export function redactUrl(url: string, fallback = '[invalid url]'): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return fallback;
  }
}
