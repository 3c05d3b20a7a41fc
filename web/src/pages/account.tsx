// Your account: who you are, your projects and roles, API tokens (created here, shown
// once), your password, and how to log in from the terminal.
import { useState } from 'preact/hooks';
import { api, pathOf } from '../lib/api';
import { dateTime } from '../lib/format';
import { useAction, useAsync, useTitle } from '../lib/hooks';
import { Link } from '../lib/router';
import { useSession } from '../lib/session';
import { Button, Dialog, EmptyState, ErrorBanner, Field, Loading, PageHeader } from '../components/ui';
import { LiveStatus, type MyQuota, QuotaBars, SecretOnce, useReturnFocus } from '../components/org';
import { ConfirmDialog } from '../components/ui';
import { userPath } from '../lib/api';

interface TokenInfo {
  id: string;
  name: string;
  kind: string;
  principal?: string;
  created_at: number;
  expires_at: number | null;
}

interface WhoAmI {
  name: string;
  token?: TokenInfo;
}

export function AccountPage(_props: { params: Record<string, string> }) {
  useTitle('Account');
  const { me } = useSession();
  const who = useAsync((signal) => api.get<WhoAmI>('/api/v1/auth/whoami', { signal }), []);
  const tokens = useAsync((signal) => api.get<TokenInfo[]>('/api/v1/tokens', { signal }), []);
  const quota = useAsync((signal) => api.get<MyQuota>('/api/v1/quota', { signal }), []);
  const [status, setStatus] = useState('');
  const [creating, setCreating] = useState(false);
  const [revoking, setRevoking] = useState<TokenInfo | null>(null);
  const focus = useReturnFocus();
  const current = who.data?.token?.id;
  const origin = location.origin;

  return (
    <>
      <PageHeader title="Account" />
      <LiveStatus message={status} />
      <div class="grid-2 org-cards">
        <section class="card" aria-labelledby="me-h">
          <h2 id="me-h">{me.name}</h2>
          <dl class="props">
            <dt>Kind</dt>
            <dd>{me.kind}</dd>
            <dt>Administrator</dt>
            <dd>{me.admin ? 'yes' : 'no'}</dd>
            <dt>Cluster</dt>
            <dd>{me.cluster}</dd>
            <dt>Projects</dt>
            <dd>
              {me.projects.length === 0 ? (
                <span class="muted">none</span>
              ) : (
                <ul class="plain-list">
                  {me.projects.map((p) => (
                    <li key={p.name}>
                      <Link href={`/projects/${encodeURIComponent(p.name)}`}>{p.name}</Link> <span class="badge">{p.role}</span>
                    </li>
                  ))}
                </ul>
              )}
            </dd>
            <dt>Roles</dt>
            <dd>
              {me.roles.length === 0 ? (
                <span class="muted">none</span>
              ) : (
                <ul class="plain-list">
                  {me.roles.map((r) => (
                    <li key={r} class="mono">
                      {r}
                    </li>
                  ))}
                </ul>
              )}
            </dd>
          </dl>
        </section>

        <section class="card" aria-labelledby="cli-h">
          <h2 id="cli-h">From the terminal</h2>
          <p>
            Log the <code>neuro</code> command-line tool in to this cluster with your password:
          </p>
          <pre class="cli">neuro login {origin} -u {me.name}</pre>
          <p>
            or with an API token from below (stdin keeps it out of <code>ps</code>):
          </p>
          <pre class="cli">neuro login {origin} --token-stdin &lt; token.txt</pre>
        </section>
      </div>

      <section class="card" aria-labelledby="tokens-h">
        <div class="row">
          <h2 id="tokens-h">API tokens</h2>
          <span class="spacer" />
          <Button
            kind="primary"
            onClick={() => {
              focus.remember();
              setCreating(true);
            }}
          >
            New token
          </Button>
        </div>
        <p class="hint">Tokens let scripts and the CLI act as you. Revoke a token you no longer use.</p>
        <ErrorBanner error={tokens.error} />
        {tokens.loading && !tokens.data ? (
          <Loading label="Loading tokens…" />
        ) : (tokens.data ?? []).length === 0 ? (
          !tokens.error && <EmptyState title="No tokens">Create one with “New token” for scripts or the CLI.</EmptyState>
        ) : (
          <div class="table-wrap">
            <table>
              <caption class="visually-hidden">Your tokens and sessions</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Kind</th>
                  <th scope="col" class="hide-narrow">
                    Created
                  </th>
                  <th scope="col">Expires</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {tokens.data!.map((t) => (
                  <tr key={t.id}>
                    <td>
                      {t.name || <span class="muted">{t.id}</span>}
                      {t.id === current && <> <span class="badge badge-running">this session</span></>}
                    </td>
                    <td>{t.kind}</td>
                    <td class="hide-narrow nowrap">{dateTime(t.created_at)}</td>
                    <td class="nowrap">{t.expires_at ? dateTime(t.expires_at) : 'never'}</td>
                    <td class="actions">
                      {t.id !== current && (
                        <Button
                          class="btn btn-danger btn-small"
                          aria-label={`Revoke ${t.name || t.id}`}
                          onClick={() => {
                            focus.remember();
                            setRevoking(t);
                          }}
                        >
                          Revoke
                        </Button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <div class="grid-2 org-cards">
        <PasswordCard onDone={() => setStatus('Password changed; your other sessions ended.')} />
        <section class="card" aria-labelledby="q-h">
          <h2 id="q-h">My quota</h2>
          <ErrorBanner error={quota.error} />
          {quota.data ? <QuotaBars quota={quota.data.user} subject={`user ${me.name}`} /> : !quota.error && <Loading />}
        </section>
      </div>

      <NewTokenDialog
        open={creating}
        onClose={() => {
          setCreating(false);
          tokens.reload();
          focus.restore();
        }}
        onCreated={(t) => setStatus(`Token ${t.name} created.`)}
      />
      <ConfirmDialog
        title={`Revoke ${revoking?.name || revoking?.id || ''}?`}
        open={revoking !== null}
        confirmLabel="Revoke token"
        onClose={() => {
          setRevoking(null);
          focus.restore();
        }}
        onConfirm={async () => {
          const t = revoking!;
          await api.del(`/api/v1/tokens/${pathOf(t.id)}`);
          tokens.setData((old) => old?.filter((x) => x.id !== t.id));
          setStatus(`Token ${t.name || t.id} revoked.`);
        }}
      >
        <p>Whatever uses this token stops working at once.</p>
      </ConfirmDialog>
    </>
  );
}

function NewTokenDialog({ open, onClose, onCreated }: { open: boolean; onClose: () => void; onCreated: (t: TokenInfo) => void }) {
  const [name, setName] = useState('');
  const [expires, setExpires] = useState('90d');
  const [issued, setIssued] = useState<(TokenInfo & { token: string }) | null>(null);
  const create = useAction(async () => {
    const body: Record<string, string> = { name: name.trim() };
    if (expires) body.expires_in = expires;
    const t = await api.post<TokenInfo & { token: string }>('/api/v1/tokens', body);
    setIssued(t);
    onCreated(t);
  });
  const close = () => {
    setIssued(null);
    setName('');
    create.setError(null);
    onClose();
  };
  return (
    <Dialog title={issued ? `Token ${issued.name}` : 'New API token'} open={open} onClose={close}>
      {issued ? (
        <>
          <SecretOnce label="Your new token" value={issued.token} />
          <p class="hint">Expires: {issued.expires_at ? dateTime(issued.expires_at) : 'never'}</p>
          <div class="dialog-actions">
            <Button kind="primary" onClick={close}>
              Done
            </Button>
          </div>
        </>
      ) : (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void create.run();
          }}
        >
          <ErrorBanner error={create.error} />
          <Field label="Token name" hint="What uses it, e.g. laptop-cli or ci">
            {(id, d) => <input id={id} aria-describedby={d} required placeholder="laptop-cli" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />}
          </Field>
          <Field label="Expires in">
            {(id) => (
              <select id={id} value={expires} onChange={(e) => setExpires((e.target as HTMLSelectElement).value)}>
                <option value="1d">1 day</option>
                <option value="7d">7 days</option>
                <option value="30d">30 days</option>
                <option value="90d">90 days</option>
                <option value="365d">1 year</option>
                <option value="">never (the server's maximum applies)</option>
              </select>
            )}
          </Field>
          <div class="dialog-actions">
            <Button onClick={close}>Cancel</Button>
            <Button kind="primary" type="submit" busy={create.busy}>
              Create token
            </Button>
          </div>
        </form>
      )}
    </Dialog>
  );
}

function PasswordCard({ onDone }: { onDone: () => void }) {
  const { me } = useSession();
  const empty = { current: '', pw: '', again: '' };
  const [form, setForm] = useState(empty);
  const save = useAction(async () => {
    if (form.pw !== form.again) throw new Error('the two new passwords differ: type the same one twice');
    await api.put(userPath(me.name, 'password'), { password: form.pw, current_password: form.current });
    setForm(empty);
    onDone();
  });
  const set = (k: keyof typeof empty) => (e: Event) => setForm({ ...form, [k]: (e.target as HTMLInputElement).value });
  return (
    <section class="card" aria-labelledby="pw-h">
      <h2 id="pw-h">Change password</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void save.run();
        }}
      >
        <ErrorBanner error={save.error} />
        <input type="text" autoComplete="username" value={me.name} hidden readOnly />
        <Field label="Current password">
          {(id) => <input id={id} type="password" autoComplete="current-password" required placeholder=" " value={form.current} onInput={set('current')} />}
        </Field>
        <Field label="New password">
          {(id) => <input id={id} type="password" autoComplete="new-password" required placeholder=" " value={form.pw} onInput={set('pw')} />}
        </Field>
        <Field label="New password again">
          {(id) => <input id={id} type="password" autoComplete="new-password" required placeholder=" " value={form.again} onInput={set('again')} />}
        </Field>
        <Button kind="primary" type="submit" busy={save.busy}>
          Change password
        </Button>
      </form>
    </section>
  );
}
