// Users, service accounts and roles (administrators): add and delete users, reset
// passwords, set quotas, see and change what a principal may do, manage roles.
import { useState } from 'preact/hooks';
import { api, ApiError, query } from '../../lib/api';
import { dateTime } from '../../lib/format';
import { useAction, useAsync, useTitle } from '../../lib/hooks';
import { Link, setSearchParam, useLocation } from '../../lib/router';
import { useSession } from '../../lib/session';
import { Button, Dialog, EmptyState, ErrorBanner, Field, Loading, PageHeader, Select, Tabs } from '../../components/ui';
import { ACTIONS, type Grant, LiveStatus, type Principal, QuotaDialog, useReturnFocus } from '../../components/org';
import { ConfirmDialog } from '../../components/ui';
import { principalPath } from '../../lib/api';
import { userPath } from '../../lib/api';

const KINDS = [
  { kind: 'user', label: 'Users' },
  { kind: 'service', label: 'Service accounts' },
  { kind: 'role', label: 'Roles' },
] as const;

type Open =
  | { what: 'add' }
  | { what: 'delete'; p: Principal }
  | { what: 'password'; p: Principal }
  | { what: 'quota'; p: Principal }
  | { what: 'permissions'; p: Principal }
  | { what: 'role-add' }
  | { what: 'role-member'; p: Principal }
  | null;

export function UsersPage(_props: { params: Record<string, string> }) {
  useTitle('Users');
  const { me } = useSession();
  const { search } = useLocation();
  const kind = KINDS.some((k) => k.kind === search.get('kind')) ? search.get('kind')! : 'user';
  const list = useAsync((signal) => api.get<Principal[]>(`/api/v1/users${query({ kind })}`, { signal }), [kind]);
  const [open, setOpenState] = useState<Open>(null);
  const [status, setStatus] = useState('');
  const [filter, setFilter] = useState('');
  const focus = useReturnFocus();
  const setOpen = (o: Open) => {
    if (o) focus.remember();
    setOpenState(o);
    if (!o) focus.restore();
  };

  // The tab list's keys (WAI-ARIA tabs): arrows, Home and End move between the kinds.
  const forbidden = list.error instanceof ApiError && list.error.status === 403;
  const rows = (list.data ?? []).filter((p) => !filter || p.name.includes(filter) || (p.email ?? '').includes(filter));
  const label = KINDS.find((k) => k.kind === kind)!.label;

  return (
    <>
      <PageHeader title="Users and roles">
        {kind === 'user' && (
          <Button kind="primary" onClick={() => setOpen({ what: 'add' })}>
            Add user
          </Button>
        )}
        {kind === 'role' && (
          <Button kind="primary" onClick={() => setOpen({ what: 'role-add' })}>
            New role
          </Button>
        )}
      </PageHeader>
      <Tabs
        label="Kind of principal"
        tabs={KINDS.map((k) => ({ id: k.kind, label: k.label }))}
        selected={kind}
        onSelect={(id) => setSearchParam('kind', id === 'user' ? null : id)}
        panelId="principals-panel"
      />
      <LiveStatus message={status} />
      {forbidden ? (
        <EmptyState title="Administrators only">Only the cluster's administrators manage users.</EmptyState>
      ) : (
        <ErrorBanner error={list.error} />
      )}
      {!forbidden && (
        <div role="tabpanel" id="principals-panel" aria-labelledby={`tab-${kind}`}>
          <div class="inline-fields">
            <Field label={`Filter ${label.toLowerCase()}`}>
              {(id) => (
                <input
                  id={id}
                  type="search"
                  value={filter}
                  placeholder="name or email"
                  onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
                />
              )}
            </Field>
          </div>
          {list.loading && !list.data ? (
            <Loading label={`Loading ${label.toLowerCase()}…`} />
          ) : rows.length === 0 ? (
            <EmptyState title={filter ? `No ${label.toLowerCase()} match “${filter}”` : `No ${label.toLowerCase()} yet`}>
              {kind === 'user' && 'Add one with “Add user”.'}
              {kind === 'service' && (
                <>
                  Users create service accounts for automation: <code>neuro service-account create NAME</code>.
                </>
              )}
              {kind === 'role' && 'Create one with “New role”, then add users to it and share resources with it.'}
            </EmptyState>
          ) : (
            <div class="table-wrap">
              <table>
                <caption class="visually-hidden">{label}</caption>
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    {kind === 'user' && (
                      <th scope="col" class="hide-narrow">
                        Email
                      </th>
                    )}
                    {kind === 'user' && <th scope="col">Admin</th>}
                    {kind === 'service' && <th scope="col">Owner</th>}
                    {kind === 'role' && <th scope="col">Kind</th>}
                    <th scope="col" class="hide-narrow">
                      Created
                    </th>
                    <th scope="col">
                      <span class="visually-hidden">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map((p) => (
                    <tr key={p.name}>
                      <td>
                        {p.name}
                        {p.name === me.name && <span class="muted"> (you)</span>}
                        {kind === 'user' && p.has_password === false && ' '}
                        {kind === 'user' && p.has_password === false && (
                          <span class="badge badge-pending" title="cannot log in with a password until one is set">
                            no password
                          </span>
                        )}
                      </td>
                      {kind === 'user' && <td class="hide-narrow">{p.email || <span class="muted">—</span>}</td>}
                      {kind === 'user' && <td>{p.admin ? <span class="badge badge-running">admin</span> : 'no'}</td>}
                      {kind === 'service' && <td>{p.owner}</td>}
                      {kind === 'role' && <td>{p.builtin ? 'built-in' : 'custom'}</td>}
                      <td class="hide-narrow nowrap">{dateTime(p.created_at)}</td>
                      <td class="actions">
                        <div class="row row-end">
                          <Button class="btn btn-small" onClick={() => setOpen({ what: 'permissions', p })} aria-label={`Permissions of ${p.name}`}>
                            Permissions
                          </Button>
                          {kind === 'user' && (
                            <>
                              <Button class="btn btn-small" onClick={() => setOpen({ what: 'quota', p })} aria-label={`Quota of ${p.name}`}>
                                Quota
                              </Button>
                              <Button
                                class="btn btn-small"
                                onClick={() => setOpen({ what: 'password', p })}
                                aria-label={`Reset the password of ${p.name}`}
                              >
                                Password
                              </Button>
                              <Link class="btn btn-small" href={`/admin/audit?user=${encodeURIComponent(p.name)}`} aria-label={`Audit log of ${p.name}`}>
                                Audit
                              </Link>
                            </>
                          )}
                          {kind === 'role' && (
                            <Button class="btn btn-small" onClick={() => setOpen({ what: 'role-member', p })} aria-label={`Add a user to ${p.name}`}>
                              Add user
                            </Button>
                          )}
                          {!p.builtin && p.name !== me.name && (
                            <Button class="btn btn-danger btn-small" onClick={() => setOpen({ what: 'delete', p })} aria-label={`Delete ${p.name}`}>
                              Delete
                            </Button>
                          )}
                        </div>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </div>
      )}

      <AddUserDialog
        open={open?.what === 'add'}
        onClose={() => setOpen(null)}
        onAdded={(p) => {
          list.setData((old) => [...(old ?? []), p]);
          setStatus(`User ${p.name} added.`);
          setOpen(null);
        }}
      />
      {open?.what === 'delete' && (
        <ConfirmDialog
          title={`Delete ${open.p.name}?`}
          open
          confirmLabel={`Delete ${open.p.kind === 'role' ? 'role' : open.p.kind === 'service' ? 'service account' : 'user'}`}
          onClose={() => setOpen(null)}
          onConfirm={async () => {
            const p = open.p;
            if (p.kind === 'role') await api.del(`/api/v1/roles/${principalPath(p.name)}`);
            else if (p.kind === 'service') await api.del(`/api/v1/service-accounts/${principalPath(p.name)}`);
            else await api.del(userPath(p.name));
            list.setData((old) => old?.filter((x) => x.name !== p.name));
            setStatus(`${p.name} deleted.`);
          }}
        >
          {open.p.kind === 'user' ? (
            <p>
              <strong>{open.p.name}</strong>'s tokens, grants and personal project (with its jobs' records) are removed. This
              cannot be undone.
            </p>
          ) : open.p.kind === 'role' ? (
            <p>Everyone holding the role loses what it grants.</p>
          ) : (
            <p>The service account's tokens stop working at once.</p>
          )}
        </ConfirmDialog>
      )}
      {open?.what === 'password' && (
        <PasswordDialog
          user={open.p.name}
          onClose={() => setOpen(null)}
          onDone={() => {
            setStatus(`Password of ${open.p.name} set; their other sessions ended.`);
            setOpen(null);
          }}
        />
      )}
      {open?.what === 'quota' && (
        <QuotaDialog
          kind="users"
          name={open.p.name}
          open
          onClose={() => setOpen(null)}
          onSaved={() => {
            setStatus(`Quota of ${open.p.name} saved.`);
            setOpen(null);
          }}
        />
      )}
      {open?.what === 'permissions' && <PermissionsDialog principal={open.p} onClose={() => setOpen(null)} />}
      {open?.what === 'role-add' && (
        <NewRoleDialog
          onClose={() => setOpen(null)}
          onCreated={(p) => {
            list.setData((old) => [...(old ?? []), p]);
            setStatus(`Role ${p.name} created.`);
            setOpen(null);
          }}
        />
      )}
      {open?.what === 'role-member' && (
        <RoleMemberDialog
          role={open.p.name}
          onClose={() => setOpen(null)}
          onDone={(user, action) => {
            setStatus(`${user} now holds ${open.p.name} (${action}).`);
            setOpen(null);
          }}
        />
      )}
    </>
  );
}

function AddUserDialog({ open, onClose, onAdded }: { open: boolean; onClose: () => void; onAdded: (p: Principal) => void }) {
  const empty = { name: '', email: '', password: '', admin: false };
  const [form, setForm] = useState(empty);
  const add = useAction(async () => {
    const body: Record<string, unknown> = { name: form.name.trim(), admin: form.admin };
    if (form.email.trim()) body.email = form.email.trim();
    if (form.password) body.password = form.password;
    onAdded(await api.post<Principal>('/api/v1/users', body));
    setForm(empty);
  });
  return (
    <Dialog title="Add user" open={open} onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void add.run();
        }}
      >
        <ErrorBanner error={add.error} />
        <Field label="User name" hint="Lowercase letters, digits, '-' and '_'; the user also gets a personal project of this name.">
          {(id, d) => (
            <input
              id={id}
              aria-describedby={d}
              required
              placeholder="carol"
              autoComplete="off"
              value={form.name}
              onInput={(e) => setForm({ ...form, name: (e.target as HTMLInputElement).value })}
            />
          )}
        </Field>
        <Field label="Email">
          {(id) => (
            <input
              id={id}
              type="email"
              placeholder="carol@example.com"
              autoComplete="off"
              value={form.email}
              onInput={(e) => setForm({ ...form, email: (e.target as HTMLInputElement).value })}
            />
          )}
        </Field>
        <Field label="Initial password" hint="Tell it to the user; they change it on their Account page. Without one they cannot log in until you set it.">
          {(id, d) => (
            <input
              id={id}
              type="password"
              autoComplete="new-password"
              aria-describedby={d}
              value={form.password}
              onInput={(e) => setForm({ ...form, password: (e.target as HTMLInputElement).value })}
            />
          )}
        </Field>
        <label class="row check">
          <input
            type="checkbox"
            checked={form.admin}
            onChange={(e) => setForm({ ...form, admin: (e.target as HTMLInputElement).checked })}
          />
          Administrator (manages every user, project and resource)
        </label>
        <div class="dialog-actions">
          <Button onClick={onClose}>Cancel</Button>
          <Button kind="primary" type="submit" busy={add.busy}>
            Create user
          </Button>
        </div>
      </form>
    </Dialog>
  );
}

function PasswordDialog({ user, onClose, onDone }: { user: string; onClose: () => void; onDone: () => void }) {
  const [pw, setPw] = useState('');
  const [again, setAgain] = useState('');
  const save = useAction(async () => {
    if (pw !== again) throw new Error('the two passwords differ: type the same one twice');
    await api.put(userPath(user, 'password'), { password: pw });
    onDone();
  });
  return (
    <Dialog title={`Reset the password of ${user}`} open onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void save.run();
        }}
      >
        <ErrorBanner error={save.error} />
        <Field label="New password">
          {(id) => (
            <input id={id} type="password" autoComplete="new-password" required placeholder=" " value={pw} onInput={(e) => setPw((e.target as HTMLInputElement).value)} />
          )}
        </Field>
        <Field label="New password again">
          {(id) => (
            <input
              id={id}
              type="password"
              autoComplete="new-password"
              required
              placeholder=" "
              value={again}
              onInput={(e) => setAgain((e.target as HTMLInputElement).value)}
            />
          )}
        </Field>
        <p class="hint">{user}'s open console sessions end; their API tokens keep working.</p>
        <div class="dialog-actions">
          <Button onClick={onClose}>Cancel</Button>
          <Button kind="primary" type="submit" busy={save.busy}>
            Set password
          </Button>
        </div>
      </form>
    </Dialog>
  );
}

// A principal's grants (direct, and optionally through the roles it holds); grant and revoke.
export function PermissionsDialog({ principal, onClose }: { principal: Principal; onClose: () => void }) {
  const [expand, setExpand] = useState(false);
  const path = userPath(principal.name, 'permissions');
  const grants = useAsync((signal) => api.get<Grant[]>(path + query({ expand_roles: expand }), { signal }), [path, expand]);
  const [uri, setUri] = useState('');
  const [action, setAction] = useState('read');
  const [status, setStatus] = useState('');
  const grant = useAction(async () => {
    await api.post<Grant[]>(path, [{ uri: uri.trim(), action }]);
    setStatus(`Granted ${action} on ${uri.trim()}.`);
    setUri('');
    grants.reload();
  });
  const revoke = useAction(async (g: Grant) => {
    await api.del(path + query({ uri: g.uri }));
    setStatus(`Revoked ${g.action} on ${g.uri}.`);
    grants.reload();
  });
  const list = grants.data ?? [];
  return (
    <Dialog title={`Permissions of ${principal.name}`} open onClose={onClose} wide>
      <ErrorBanner error={grants.error || revoke.error} />
      <LiveStatus message={status} />
      <label class="row check">
        <input type="checkbox" checked={expand} onChange={(e) => setExpand((e.target as HTMLInputElement).checked)} />
        Include what the roles it holds grant
      </label>
      {grants.loading && !grants.data ? (
        <Loading label="Loading permissions…" />
      ) : list.length === 0 ? (
        <EmptyState title="No grants">Grant one below, e.g. read on storage://cluster/project/data.</EmptyState>
      ) : (
        <div class="table-wrap perm-table">
          <table>
            <caption class="visually-hidden">Grants of {principal.name}</caption>
            <thead>
              <tr>
                <th scope="col">Resource</th>
                <th scope="col">Action</th>
                <th scope="col">Through</th>
                <th scope="col">
                  <span class="visually-hidden">Revoke</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.map((g) => (
                <tr key={g.uri + g.action + (g.via ?? '')}>
                  <td class="mono break">{g.uri}</td>
                  <td>
                    <span class={`badge badge-action-${g.action}`}>{g.action}</span>
                  </td>
                  <td>{g.via ? <span class="mono">{g.via}</span> : <span class="muted">direct</span>}</td>
                  <td class="actions">
                    {!g.via && (
                      <Button
                        class="btn btn-danger btn-small"
                        aria-label={`Revoke ${g.action} on ${g.uri}`}
                        busy={revoke.busy}
                        onClick={() => void revoke.run(g)}
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
      <form
        class="inline-fields grant-form"
        aria-label="Grant a permission"
        onSubmit={(e) => {
          e.preventDefault();
          void grant.run();
        }}
      >
        <Field label="Resource URI" hint="e.g. storage://cluster/project/data, job://cluster/alice, role://alice/roles/readers">
          {(id, d) => <input id={id} aria-describedby={d} required class="mono" placeholder="storage://cluster/project/path" value={uri} onInput={(e) => setUri((e.target as HTMLInputElement).value)} />}
        </Field>
        <Field label="Action">
          {(id) => (
            <Select id={id} value={action} options={[...ACTIONS]} onValue={setAction} />
          )}
        </Field>
        <div class="field">
          <Button type="submit" kind="primary" busy={grant.busy}>
            Grant
          </Button>
        </div>
      </form>
      <ErrorBanner error={grant.error} />
      <div class="dialog-actions">
        <Button onClick={onClose}>Close</Button>
      </div>
    </Dialog>
  );
}

function NewRoleDialog({ onClose, onCreated }: { onClose: () => void; onCreated: (p: Principal) => void }) {
  const { me } = useSession();
  const [name, setName] = useState(`${me.name}/roles/`);
  const create = useAction(async () => onCreated(await api.post<Principal>('/api/v1/roles', { name: name.trim() })));
  return (
    <Dialog title="New role" open onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void create.run();
        }}
      >
        <ErrorBanner error={create.error} />
        <Field label="Role name" hint={`A role's name has a '/': ${me.name}/roles/NAME (administrators may choose any).`}>
          {(id, d) => <input id={id} aria-describedby={d} required class="mono" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />}
        </Field>
        <div class="dialog-actions">
          <Button onClick={onClose}>Cancel</Button>
          <Button kind="primary" type="submit" busy={create.busy}>
            Create role
          </Button>
        </div>
      </form>
    </Dialog>
  );
}

// Holding a role is a grant of read (or more: manage lets the holder share it) on role://NAME.
function RoleMemberDialog({ role, onClose, onDone }: { role: string; onClose: () => void; onDone: (user: string, action: string) => void }) {
  const [user, setUser] = useState('');
  const [action, setAction] = useState('read');
  const add = useAction(async () => {
    await api.post(userPath(user.trim(), 'permissions'), [{ uri: `role://${role}`, action }]);
    onDone(user.trim(), action);
  });
  return (
    <Dialog title={`Add a user to ${role}`} open onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void add.run();
        }}
      >
        <ErrorBanner error={add.error} />
        <Field label="User">
          {(id) => <input id={id} required placeholder="user name" value={user} onInput={(e) => setUser((e.target as HTMLInputElement).value)} />}
        </Field>
        <Field label="Holds the role as" hint="read: holds it; manage: also adds and removes its holders">
          {(id, d) => (
            <select id={id} aria-describedby={d} value={action} onChange={(e) => setAction((e.target as HTMLSelectElement).value)}>
              <option value="read">read</option>
              <option value="write">write</option>
              <option value="manage">manage</option>
            </select>
          )}
        </Field>
        <div class="dialog-actions">
          <Button onClick={onClose}>Cancel</Button>
          <Button kind="primary" type="submit" busy={add.busy}>
            Add to role
          </Button>
        </div>
      </form>
    </Dialog>
  );
}
