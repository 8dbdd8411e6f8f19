import { stringifyDocument } from '@urql/core';
import { useState, type FormEvent } from 'react';
import { SignInDocument, SignUpDocument, type SignInMutation, type SignUpMutation } from '../gql/graphql.ts';
import { anonymousRequest, type Session } from '../app/session.ts';

/** Sign up (name, email, password) or sign in (email, password). */
export function AuthScreen({ onSignedIn }: { onSignedIn(session: Session): void }) {
  const [mode, setMode] = useState<'signUp' | 'signIn'>('signUp');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const email = String(form.get('email') ?? '');
    const password = String(form.get('password') ?? '');
    setBusy(true);
    setError(null);
    try {
      if (mode === 'signUp') {
        const data = await anonymousRequest<SignUpMutation>(stringifyDocument(SignUpDocument), {
          input: { email, password, name: String(form.get('name') ?? '') },
        });
        onSignedIn({ token: data.signUp.token, user: data.signUp.user });
      } else {
        const data = await anonymousRequest<SignInMutation>(stringifyDocument(SignInDocument), { input: { email, password } });
        onSignedIn({ token: data.signIn.token, user: data.signIn.user });
      }
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="auth">
      <h1>Realtime chat</h1>
      <div className="tabs" role="tablist">
        <button role="tab" aria-selected={mode === 'signUp'} onClick={() => setMode('signUp')}>
          Sign up
        </button>
        <button role="tab" aria-selected={mode === 'signIn'} onClick={() => setMode('signIn')}>
          Sign in
        </button>
      </div>
      <form onSubmit={submit} className="card">
        {mode === 'signUp' && (
          <label>
            Name
            <input name="name" required autoComplete="name" />
          </label>
        )}
        <label>
          Email
          <input name="email" type="email" required autoComplete="email" />
        </label>
        <label>
          Password
          <input name="password" type="password" required minLength={8} autoComplete={mode === 'signUp' ? 'new-password' : 'current-password'} />
        </label>
        {error && <p className="error" role="alert">{error}</p>}
        <button type="submit" disabled={busy}>
          {mode === 'signUp' ? 'Create account' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
