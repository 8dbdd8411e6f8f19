// Breaking-change rules for the public schema, shared by
// `npm run schema:check-breaking` and its tests.
import { CriticalityLevel, diff, type Change } from '@graphql-inspector/core';
import {
  buildSchema,
  DEFAULT_DEPRECATION_REASON,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  type GraphQLSchema,
} from 'graphql';

/** A breaking change between two versions of the SDL, and whether CHANGELOG.md announces it. */
export interface BreakingChange {
  /** Schema coordinate such as `Query.rooms` or `Message.body`. */
  path: string;
  message: string;
  announced: boolean;
}

/**
 * The text of CHANGELOG.md's `## Unreleased` section (up to the next `## `
 * heading); empty when there is none.
 */
export function unreleasedSection(changelog: string): string {
  const match = /^## Unreleased[^\n]*\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(changelog);
  return match?.[1] ?? '';
}

/**
 * Whether the Unreleased section names the change: its schema coordinate in
 * backticks (`Query.rooms`), or a parent of it (`Room` covers `Room.name`).
 */
export function isAnnounced(path: string, unreleased: string): boolean {
  const named = new Set([...unreleased.matchAll(/`([\w.@]+)`/g)].map((m) => m[1]));
  const parts = path.split('.');
  return parts.some((_, i) => named.has(parts.slice(0, i + 1).join('.')));
}

/** Breaking changes from `oldSdl` to `newSdl`, each marked announced or not by the changelog. */
export async function breakingChanges(oldSdl: string, newSdl: string, changelog: string): Promise<BreakingChange[]> {
  const changes: Change[] = await diff(buildSchema(oldSdl), buildSchema(newSdl));
  const unreleased = unreleasedSection(changelog);
  return changes
    .filter((c) => c.criticality.level === CriticalityLevel.Breaking)
    .map((c) => {
      const path = c.path ?? '';
      return { path, message: c.message, announced: path !== '' && isAnnounced(path, unreleased) };
    });
}

/**
 * Deprecations without a reason of their own: a bare `@deprecated` prints
 * graphql's default "No longer supported", which tells a client nothing
 * about what to use instead.
 */
export function deprecationsWithoutReason(sdl: string): string[] {
  const schema: GraphQLSchema = buildSchema(sdl);
  const bare = (reason: string | null | undefined) => reason != null && (reason.trim() === '' || reason === DEFAULT_DEPRECATION_REASON);
  const found: string[] = [];
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith('__')) continue;
    if (isObjectType(type) || isInterfaceType(type)) {
      for (const field of Object.values(type.getFields())) {
        if (bare(field.deprecationReason)) found.push(`${type.name}.${field.name}`);
        for (const arg of field.args) if (bare(arg.deprecationReason)) found.push(`${type.name}.${field.name}(${arg.name})`);
      }
    } else if (isInputObjectType(type)) {
      for (const field of Object.values(type.getFields())) if (bare(field.deprecationReason)) found.push(`${type.name}.${field.name}`);
    } else if (isEnumType(type)) {
      for (const value of type.getValues()) if (bare(value.deprecationReason)) found.push(`${type.name}.${value.name}`);
    }
  }
  return found;
}
