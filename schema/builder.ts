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
  },
});
