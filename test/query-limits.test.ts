import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, print, type DefinitionNode, type GraphQLError } from 'graphql';
import { createYoga } from 'graphql-yoga';
import { describe, expect, it } from 'vitest';
import { QUERY_LIMITS, queryGuardPlugins, type QueryLimits } from '../api/http/graphql-guards.ts';
import * as operations from '../loadtests/lib/operations.ts';
import { buildSchema } from '../schema/index.ts';
import { REPO_ROOT } from './helpers/processes.ts';

/** Runs a document through parse + validate with the guard plugins, as both HTTP and graphql-ws do. */
function check(source: string, limits: QueryLimits, introspection = true): readonly GraphQLError[] {
  const yoga = createYoga({ schema: buildSchema(), plugins: queryGuardPlugins({ introspection, limits }), logging: false });
  const { parse: parseDoc, validate, schema } = yoga.getEnveloped({});
  try {
    return validate(schema, parseDoc(source));
  } catch (error) {
    return [error as GraphQLError];
  }
}

/**
 * Every operation the product's clients send, each with the fragments it
 * uses: web/src/graphql/*.graphql (one definition per file) and the load
 * tests' documents.
 */
function productDocuments(): Record<string, string> {
  const dir = join(REPO_ROOT, 'web/src/graphql');
  const definitions = readdirSync(dir)
    .filter((f) => f.endsWith('.graphql'))
    .flatMap((f) => parse(readFileSync(join(dir, f), 'utf8')).definitions.map((d): [string, DefinitionNode] => [f, d]));
  const fragments = new Map<string, string>();
  for (const [, d] of definitions) if (d.kind === 'FragmentDefinition') fragments.set(d.name.value, print(d));
  // An operation with the fragments it spreads, and those they spread in turn.
  const withFragments = (source: string): string => {
    const used = new Set<string>();
    const pending = [source];
    while (pending.length > 0) {
      for (const [, name] of (pending.pop() as string).matchAll(/\.\.\.\s*(\w+)/g)) {
        const fragment = fragments.get(name as string);
        if (fragment && !used.has(name as string)) {
          used.add(name as string);
          pending.push(fragment);
        }
      }
    }
    return [source, ...[...used].map((name) => fragments.get(name))].join('\n');
  };
  const docs: Record<string, string> = {};
  for (const [file, d] of definitions) {
    if (d.kind === 'OperationDefinition') docs[`web/src/graphql/${file}`] = withFragments(print(d));
  }
  for (const [name, value] of Object.entries(operations)) {
    if (typeof value === 'string' && /^(query|mutation|subscription)\b/.test(value)) docs[`loadtests/lib/operations.ts ${name}`] = value;
  }
  return docs;
}

// One room with its members and a page of full messages: about 14,600 by armor's cost.
const ROOM_WITH_MESSAGES =
  'members { id name status lastSeenAt } messages(last: 100) { edges { node { id seq body clientId createdAt roomId readCount sender { id name status lastSeenAt } attachments { id name size contentType url signedUrl } } } }';

const half: QueryLimits = Object.fromEntries(Object.entries(QUERY_LIMITS).map(([k, v]) => [k, Math.floor(v / 2)])) as unknown as QueryLimits;

describe('query limits', () => {
  const docs = productDocuments();

  it('finds the product documents', () => {
    expect(Object.keys(docs).length).toBeGreaterThanOrEqual(16);
  });

  it.each(Object.entries(docs))('%s stays within half of every limit', (_name, source) => {
    expect(check(source, half)).toEqual([]);
  });

  it.each([
    ['depth', `{ rooms { ${'room: rooms { '.repeat(17)} id ${'} '.repeat(17)} } }`, /depth limit of 16/],
    ['aliases', `{ ${Array.from({ length: 40 }, (_, i) => `a${i}: me { id }`).join(' ')} }`, /Aliases limit of 15/],
    ['directives', `{ me { ${Array.from({ length: 30 }, () => 'id @include(if: true)').join(' ')} } }`, /Directives limit of 20/],
    ['tokens', `{ me { ${'id '.repeat(3000)} } }`, /Token limit of 2000/],
    ['cost', `{ ${Array.from({ length: 3 }, (_, i) => `r${i}: rooms { ${ROOM_WITH_MESSAGES} }`).join(' ')} }`, /Cost limit of 20000/],
  ])('refuses too many %s with QUERY_TOO_COMPLEX', (_what, source, message) => {
    const errors = check(source, QUERY_LIMITS);
    expect(errors.some((e) => message.test(e.message))).toBe(true);
    expect(errors.find((e) => message.test(e.message))?.extensions.code).toBe('QUERY_TOO_COMPLEX');
  });

  it('refuses introspection only when it is turned off', () => {
    expect(check('{ __schema { types { name } } }', QUERY_LIMITS, true)).toEqual([]);
    expect(check('{ __schema { types { name } } }', QUERY_LIMITS, false)[0]?.message).toMatch(/introspection has been disabled/);
  });
});
