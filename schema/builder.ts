import SchemaBuilder from '@pothos/core';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import type { Context } from './context.ts';
import { unauthenticated } from './errors.ts';

/** Object shapes that resolvers pass around; fields resolve from these. */
export interface UserShape {
  id: string;
  name: string;
  email?: string;
  /** Present when the source already knows it (presence events); loaded otherwise. */
  lastSeenAt?: Date | null;
}

export interface RoomShape {
  id: string;
  name: string;
  createdAt: Date;
  createdById: string;
}

export interface MessageShape {
  id: string;
  roomId: string;
  seq: number;
  body: string;
  clientId: string;
  createdAt: Date;
  sender: UserShape;
  attachments: { id: string; name: string; size: number; contentType: string }[];
}

export const builder = new SchemaBuilder<{
  Context: Context;
  AuthScopes: { loggedIn: boolean };
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
  };
}>({
  plugins: [ScopeAuthPlugin, RelayPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    authorizeOnSubscribe: true,
    authScopes: (ctx) => ({ loggedIn: ctx.viewer !== null }),
    unauthorizedError: () => unauthenticated(),
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    nodeQueryOptions: false,
    nodesQueryOptions: false,
    pageInfoTypeOptions: { description: 'Where a page sits in a list (Relay cursor connections).' },
    hasNextPageFieldOptions: { description: 'Whether more items follow this page.' },
    hasPreviousPageFieldOptions: { description: 'Whether more items precede this page.' },
    startCursorFieldOptions: { description: 'Cursor of the first item on this page; pass it as `before` to page backwards.' },
    endCursorFieldOptions: { description: 'Cursor of the last item on this page; pass it as `after` to page forwards.' },
    pageInfoFieldOptions: { description: 'Paging position of this page.' },
    edgesFieldOptions: { description: 'The items on this page, each with its cursor.' },
    cursorFieldOptions: { description: 'Opaque position of this item, for `before`/`after`.' },
    nodeFieldOptions: { description: 'The item.' },
    firstArgOptions: { description: 'Page forwards: how many items after `after` (at most 100).' },
    lastArgOptions: { description: 'Page backwards: how many items before `before` (at most 100).' },
    beforeArgOptions: { description: 'Cursor to page backwards from (exclusive).' },
    afterArgOptions: { description: 'Cursor to page forwards from (exclusive).' },
    defaultConnectionTypeOptions: { description: 'A page of a list, with cursors (Relay cursor connection).' },
    defaultEdgeTypeOptions: { description: 'An item of a page and its cursor.' },
  },
});
