import { lexicographicSortSchema, type GraphQLSchema } from 'graphql';
import { builder } from './builder.ts';
import './scalars.ts';
import './user.ts';
import './auth.ts';
import './room.ts';
import './message.ts';
import './typing.ts';
import './receipts.ts';
import './presence.ts';
import './dashboard.ts';
import './notification.ts';
import './document.ts';

export type { Context, Services, Viewer } from './context.ts';
export type { Events, PubSub } from './events.ts';

let schema: GraphQLSchema | undefined;

/** The executable schema (built once; the domain modules register their types on import). */
export function buildSchema(): GraphQLSchema {
  schema ??= builder.toSchema();
  return schema;
}

/** The schema as third parties see it: types sorted, so the printed file diffs cleanly. */
export function publicSchema(): GraphQLSchema {
  return lexicographicSortSchema(buildSchema());
}
