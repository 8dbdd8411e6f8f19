import { builder, type UserShape } from './builder.ts';

export const User = builder.objectRef<UserShape>('User').implement({
  description: 'A person using the product.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Stable identifier (a UUID).' }),
    name: t.exposeString('name', { description: 'Display name, 1 to 100 characters.' }),
    email: t.string({
      nullable: true,
      description: "The user's email address; visible only to the user themselves, null for everyone else.",
      // Differs by who asks: subscriptions selecting it are executed per subscriber.
      extensions: { viewerDependent: true },
      resolve: (user, _args, ctx) => (ctx.viewer?.id === user.id ? (user.email ?? ctx.viewer.email) : null),
    }),
  }),
});

builder.queryType({
  description: 'Read operations. All of them except the auth-free ones need a bearer token.',
});

builder.queryField('me', (t) =>
  t.field({
    type: User,
    nullable: true,
    description: 'The signed-in user, or null when the request carries no token.',
    resolve: (_root, _args, ctx) => ctx.viewer,
  }),
);
