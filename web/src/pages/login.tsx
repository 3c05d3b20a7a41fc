import { useState } from 'preact/hooks';
import { api } from '../lib/api';
import { useTitle } from '../lib/hooks';
import { Button, ErrorBanner, Field } from '../components/ui';

export function LoginPage({ onLoggedIn }: { onLoggedIn: () => Promise<void> }) {
  useTitle('Log in');
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | null>(null);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.post('/api/v1/auth/login', { user, password, cookie: true });
      await onLoggedIn();
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="login" id="main">
      <form class="card login-card" onSubmit={submit} aria-labelledby="login-title">
        <div class="login-brand">
          <img src="/favicon.svg" alt="" width={40} height={40} />
          <h1 id="login-title">Log in to neurod</h1>
        </div>
        <ErrorBanner error={error} />
        <Field label="User name">
          {(id) => (
            <input
              id={id}
              name="user"
              autoComplete="username"
              required
              autoFocus
              value={user}
              onInput={(e) => setUser((e.target as HTMLInputElement).value)}
            />
          )}
        </Field>
        <Field label="Password">
          {(id) => (
            <input
              id={id}
              name="password"
              type="password"
              autoComplete="current-password"
              required
              value={password}
              onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
            />
          )}
        </Field>
        <Button type="submit" kind="primary" busy={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </Button>
        <p class="hint">
          No account yet? An administrator creates users (<code>neuro admin user add</code>).
        </p>
      </form>
    </main>
  );
}
