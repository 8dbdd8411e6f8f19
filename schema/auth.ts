import { z } from 'zod';
import { builder } from './builder.ts';
import type { Viewer } from './context.ts';
import { ErrorCode, userError } from './errors.ts';
import { User } from './user.ts';
import { parseInput } from './validation.ts';
import { addressKey, checkRate, limitRate } from './lib/rate-limit.ts';

const email = z.string().trim().toLowerCase().max(254).pipe(z.email({ message: 'must be an email address' }));
const SignUp = z.object({
  email,
  name: z.string().trim().min(1, 'must not be empty').max(100),
  password: z.string().min(8, 'must be at least 8 characters').max(200),
});
const SignIn = z.object({ email, password: z.string().min(1).max(200) });

interface AuthPayloadShape {
  token: string;
  user: Viewer;
}

const AuthPayload = builder.objectRef<AuthPayloadShape>('AuthPayload').implement({
  description: 'A bearer token and the user it belongs to.',
  fields: (t) => ({
    token: t.exposeString('token', {
      description:
        'Access token (JWT). Send it as `Authorization: Bearer <token>` over HTTP and as `connectionParams.authorization` over WebSocket. Expires after the configured lifetime (24 h by default).',
    }),
    user: t.field({ type: User, description: 'The signed-in user.', resolve: (p) => p.user }),
  }),
});

const SignUpInput = builder.inputType('SignUpInput', {
  description: 'A new account.',
  fields: (t) => ({
    email: t.string({ required: true, description: 'Email address, unique across users (case-insensitive), at most 254 characters.' }),
    name: t.string({ required: true, description: 'Display name, 1 to 100 characters.' }),
    password: t.string({ required: true, description: 'Password, 8 to 200 characters.' }),
  }),
});

const SignInInput = builder.inputType('SignInInput', {
  description: 'Credentials of an existing account.',
  fields: (t) => ({
    email: t.string({ required: true, description: 'Email address the account was created with.' }),
    password: t.string({ required: true, description: 'The account password.' }),
  }),
});

builder.mutationType({ description: 'Write operations. All of them except signUp and signIn need a bearer token.' });

builder.mutationField('signUp', (t) =>
  t.field({
    type: AuthPayload,
    description: 'Creates an account and signs it in. Errors: BAD_USER_INPUT for invalid fields, CONFLICT when the email is taken, RATE_LIMITED after too many sign-ups from one address.',
    args: { input: t.arg({ type: SignUpInput, required: true, description: 'The new account.' }) },
    resolve: async (_root, { input }, ctx) => {
      await limitRate(ctx, 'signUpIp', addressKey(ctx));
      const data = parseInput(SignUp, input);
      const passwordHash = await ctx.passwords.hash(data.password);
      const existing = await ctx.db.user.findUnique({ where: { email: data.email }, select: { id: true } });
      if (existing) throw userError(ErrorCode.CONFLICT, 'An account with this email already exists.', { field: 'email' });
      try {
        const user = await ctx.db.user.create({
          data: { email: data.email, name: data.name, passwordHash },
          select: { id: true, email: true, name: true },
        });
        return { token: await ctx.tokens.issue(user), user };
      } catch (error) {
        // Two sign-ups for one email racing: the unique index decides.
        if ((error as { code?: string }).code === 'P2002') {
          throw userError(ErrorCode.CONFLICT, 'An account with this email already exists.', { field: 'email' });
        }
        throw error;
      }
    },
  }),
);

builder.mutationField('signIn', (t) =>
  t.field({
    type: AuthPayload,
    description: 'Signs in with email and password. Errors: UNAUTHENTICATED when they do not match an account, RATE_LIMITED after too many attempts from one address or too many failures for one email.',
    args: { input: t.arg({ type: SignInInput, required: true, description: 'The credentials.' }) },
    resolve: async (_root, { input }, ctx) => {
      // Every attempt costs a password hash: count them per address before any work.
      await limitRate(ctx, 'signInIp', addressKey(ctx));
      const data = parseInput(SignIn, input);
      // Only failures count per email, so that the owner's own sign-ins never lock them out.
      await checkRate(ctx, 'signInEmail', data.email);
      const user = await ctx.db.user.findUnique({
        where: { email: data.email },
        select: { id: true, email: true, name: true, passwordHash: true },
      });
      // Verify against a throwaway hash when the account does not exist, so
      // the response time does not reveal which emails have accounts.
      const ok = await ctx.passwords.verify(data.password, user?.passwordHash ?? (await dummyHash(ctx.passwords)));
      if (!user || !ok) {
        await ctx.rateLimiter.consume('signInEmail', data.email);
        throw userError(ErrorCode.UNAUTHENTICATED, 'Email or password is wrong.');
      }
      await ctx.rateLimiter.reset('signInEmail', data.email);
      const viewer = { id: user.id, email: user.email, name: user.name };
      return { token: await ctx.tokens.issue(viewer), user: viewer };
    },
  }),
);

let dummy: Promise<string> | undefined;
function dummyHash(passwords: { hash(p: string): Promise<string> }): Promise<string> {
  dummy ??= passwords.hash('not-a-real-password');
  return dummy;
}
