/** Most distinct names one message can mention; more are ignored. */
export const MAX_MENTIONS = 20;

const MENTION = /(^|[^\p{L}\p{N}_@])@([\p{L}\p{N}_][\p{L}\p{N}_.-]*)/gu;

/**
 * The names mentioned with `@name` in a message body, lower-cased, without
 * duplicates, in order of appearance. An address such as a@b.c is not a
 * mention; trailing punctuation (`@ana.`) is not part of the name.
 */
export function mentionedNames(body: string): string[] {
  const names = new Set<string>();
  for (const match of body.matchAll(MENTION)) {
    const name = (match[2] as string).replace(/[.-]+$/, '').toLowerCase();
    if (name.length === 0 || name.length > 100) continue;
    names.add(name);
    if (names.size >= MAX_MENTIONS) break;
  }
  return [...names];
}

/**
 * Whether `@token` addresses a user named `name`, ignoring case: the whole
 * name, with `_` standing for spaces ("@ana_lopez" for "Ana Lopez"), or its
 * first word ("@ana").
 */
export function mentionMatches(token: string, name: string): boolean {
  const words = name.toLowerCase().trim().split(/\s+/);
  return token === words.join(' ') || token === words.join('_') || token === words[0];
}

/** Name conditions that find every candidate for `token` in the database (refine with mentionMatches). */
export function mentionCandidates(token: string): { name: { equals?: string; startsWith?: string; mode: 'insensitive' } }[] {
  return [
    { name: { equals: token, mode: 'insensitive' } },
    { name: { equals: token.replace(/_/g, ' '), mode: 'insensitive' } },
    { name: { startsWith: `${token} `, mode: 'insensitive' } },
  ];
}
