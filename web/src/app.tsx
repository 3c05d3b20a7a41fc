import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, ApiError, onUnauthenticated } from './lib/api';
import { Link, match, navigate, useLocation } from './lib/router';
import { type Me, SessionContext } from './lib/session';
import { nav, routes } from './routes';
import { LoginPage } from './pages/login';
import { EmptyState, ErrorBanner, Loading } from './components/ui';

export function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined); // undefined: still asking
  const [error, setError] = useState<Error | null>(null);
  const { path } = useLocation();

  const refresh = useCallback(async () => {
    try {
      setMe(await api.get<Me>('/api/v1/auth/whoami'));
      setError(null);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) setMe(null);
      else setError(e as Error);
    }
  }, []);

  useEffect(() => {
    void refresh();
    return onUnauthenticated(() => setMe(null));
  }, [refresh]);

  const logout = useCallback(async () => {
    try {
      await api.post('/api/v1/auth/logout');
    } finally {
      setMe(null);
      navigate('/login');
    }
  }, []);

  if (me === undefined) {
    return error ? (
      <main class="centered">
        <ErrorBanner error={error} />
        <button type="button" class="btn btn-primary" onClick={() => void refresh()}>
          Try again
        </button>
      </main>
    ) : (
      <main class="centered">
        <Loading label="Connecting to neurod…" />
      </main>
    );
  }
  if (me === null) {
    return <LoginPage onLoggedIn={refresh} />;
  }
  if (path === '/' || path === '/login') {
    navigate('/jobs', true);
    return null;
  }

  let page = null;
  for (const r of routes) {
    const params = match(r.pattern, path);
    if (!params) continue;
    const Component = r.component;
    page =
      r.admin && !me.admin ? (
        <EmptyState title="Administrators only">This page is for the cluster's administrators.</EmptyState>
      ) : (
        <Component params={params} key={r.pattern} />
      );
    break;
  }
  if (!page) {
    page = (
      <EmptyState title="Page not found">
        Nothing lives at <code>{path}</code>. <Link href="/jobs">Go to your jobs</Link>.
      </EmptyState>
    );
  }

  return (
    <SessionContext.Provider value={{ me, refresh, logout }}>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <div class="layout">
        <header class="topbar">
          <Link href="/jobs" class="brand" aria-label="neurod home">
            <img src="/favicon.svg" alt="" width={24} height={24} />
            <span>neurod</span>
            <span class="cluster">{me.cluster}</span>
          </Link>
          <nav aria-label="Main" class="mainnav">
            <ul>
              {nav
                .filter((n) => !n.admin || me.admin)
                .map((n) => (
                  <li key={n.href}>
                    <Link href={n.href} aria-current={path === n.href || path.startsWith(n.href + '/') ? 'page' : undefined}>
                      {n.label}
                    </Link>
                  </li>
                ))}
            </ul>
          </nav>
          <div class="user">
            {/* org: the user name opens the account page (tokens, password, quota) */}
            <Link
              href="/account"
              class="user-name"
              title={me.admin ? 'administrator' : undefined}
              aria-current={path === '/account' ? 'page' : undefined}
            >
              {me.name}
              {me.admin && <span class="muted"> (admin)</span>}
            </Link>
            <button type="button" class="btn btn-link" onClick={() => void logout()}>
              Log out
            </button>
          </div>
        </header>
        <main id="main" tabIndex={-1}>
          {page}
        </main>
      </div>
    </SessionContext.Provider>
  );
}
