// Share a resource (a job, a storage folder or file, an image, a secret) with a user or a
// role, and see and revoke who it is shared with. Used by the jobs, storage, images and
// secrets pages. API (modules/auth/README.md "Permissions"):
//   grant   POST   /api/v1/users/{principal}/permissions  {uri, action}
//   list    GET    /api/v1/users/{me}/permissions/shared?uri=URI  → [{user, uri, action}]
//   revoke  DELETE /api/v1/users/{principal}/permissions?uri=URI
//   names   GET    /api/v1/users (admins only: a 403 leaves free text) and GET /api/v1/roles
import { useId, useState } from 'preact/hooks';
import { api, ApiError, query } from '../lib/api';
import { useAction, useAsync } from '../lib/hooks';
import { useSession } from '../lib/session';
import { principalPath } from '../lib/api';
import { Button, Dialog, ErrorBanner, Field, Loading, Notice, Select } from './ui';

export interface ShareProps {
  uri: string; // e.g. "job://cluster/alice/job-abc", "storage://cluster/alice/data", "image://cluster/alice/train"
  title: string; // what is shared, for the dialog title: "job train-1"
  open: boolean;
  onClose: () => void;
}

interface Grant {
  user: string;
  uri: string;
  action: string;
}

const ACTIONS = [
  { value: 'read', label: 'read — see and download' },
  { value: 'write', label: 'write — also change and delete' },
  { value: 'manage', label: 'manage — also share with others' },
];

const trimUri = (u: string) => u.replace(/\/+$/, '');

export function ShareDialog({ uri, title, open, onClose }: ShareProps) {
  return (
    <Dialog title={`Share ${title}`} open={open} onClose={onClose} wide>
      {open && <ShareForm uri={uri} />}
    </Dialog>
  );
}

function ShareForm({ uri }: { uri: string }) {
  const { me } = useSession();
  const listId = useId();
  const [who, setWho] = useState('');
  const [action, setAction] = useState('read');
  const [done, setDone] = useState('');

  // Names to pick from: users (admins only) and the roles the caller holds or manages.
  const names = useAsync(async (signal) => {
    const out: { name: string; kind: string }[] = [];
    // Only admins may list users (others get 403 and type the name).
    if (me.admin) {
      try {
        const users = await api.get<{ name: string; kind: string }[]>('/api/v1/users', { signal });
        for (const u of users) if (u.name !== me.name) out.push({ name: u.name, kind: u.kind === 'role' ? 'role' : 'user' });
      } catch (e) {
        if (!(e instanceof ApiError) || (e.status !== 403 && e.status !== 404)) throw e;
      }
    }
    try {
      const roles = await api.get<{ name: string }[]>('/api/v1/roles', { signal });
      for (const r of roles) if (!out.some((o) => o.name === r.name)) out.push({ name: r.name, kind: 'role' });
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
    }
    return out;
  }, []);

  const grants = useAsync(
    (signal) =>
      api.get<Grant[]>(`/api/v1/users/${principalPath(me.name)}/permissions/shared${query({ uri })}`, { signal }),
    [uri, me.name],
  );

  const share = useAction(async () => {
    const principal = who.trim();
    if (!principal) throw new Error('Name a user (bob) or a role (projects/ml/reader) to share with.');
    await api.post(`/api/v1/users/${principalPath(principal)}/permissions`, { uri, action });
    setDone(`Shared with ${principal} (${action}).`);
    setWho('');
    grants.reload();
  });

  const revoke = useAction(async (g: Grant) => {
    await api.del(`/api/v1/users/${principalPath(g.user)}/permissions${query({ uri: g.uri })}`);
    setDone(`Revoked ${g.user}'s ${g.action} on ${g.uri}.`);
    grants.reload();
  });

  const here = trimUri(uri);
  const list = (grants.data ?? []).filter((g) => trimUri(g.uri) === here || trimUri(g.uri).startsWith(here + '/'));

  return (
    <>
      <p class="muted small">
        <code class="break">{uri}</code>
      </p>
      <form
        class="inline-fields"
        onSubmit={(e) => {
          e.preventDefault();
          setDone('');
          void share.run();
        }}
      >
        <Field label="User or role">
          {(id) => (
            <input
              id={id}
              aria-describedby={`${listId}-hint`}
              list={listId}
              value={who}
              placeholder="bob"
              autoFocus
              autoComplete="off"
              required
              onInput={(e) => setWho((e.target as HTMLInputElement).value)}
            />
          )}
        </Field>
        <datalist id={listId}>
          {(names.data ?? []).map((n) => (
            <option key={n.name} value={n.name}>
              {n.kind}
            </option>
          ))}
        </datalist>
        <Field label="Permission">
          {(id) => (
            <Select id={id} value={action} options={ACTIONS} onValue={setAction} />
          )}
        </Field>
        <div class="field">
          <Button kind="primary" type="submit" busy={share.busy}>
            Share
          </Button>
        </div>
      </form>
      <p id={`${listId}-hint`} class="hint share-hint">
        A user (bob), a role (projects/ml/reader) or a service account (alice/service-accounts/ci).
      </p>
      <ErrorBanner error={share.error ?? revoke.error} onDismiss={() => (share.setError(null), revoke.setError(null))} />
      {done && <Notice kind="success">{done}</Notice>}

      <h3>Shared with</h3>
      {grants.loading && !grants.data ? (
        <Loading />
      ) : grants.error ? (
        grants.error instanceof ApiError && grants.error.status === 403 ? (
          <p class="muted">You may share this but not list who else has access to it.</p>
        ) : (
          <ErrorBanner error={grants.error} />
        )
      ) : list.length === 0 ? (
        <p class="muted">Nobody yet, apart from the members of its project (through their project role).</p>
      ) : (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">Who this is shared with</caption>
            <thead>
              <tr>
                <th scope="col">User or role</th>
                <th scope="col">Permission</th>
                <th scope="col">On</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.map((g) => (
                <tr key={`${g.user} ${g.uri}`}>
                  <td>{g.user}</td>
                  <td>{g.action}</td>
                  <td class="small">{trimUri(g.uri) === here ? 'this' : <code class="break">{g.uri.slice(here.length + 1)}</code>}</td>
                  <td class="actions">
                    <Button
                      kind="danger"
                      class="btn btn-danger btn-small"
                      busy={revoke.busy}
                      aria-label={`Revoke ${g.user}'s access`}
                      onClick={() => {
                        setDone('');
                        void revoke.run(g);
                      }}
                    >
                      Revoke
                    </Button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
