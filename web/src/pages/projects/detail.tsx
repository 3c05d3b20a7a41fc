// One project: who is in it with which role (managers change that here), its quota and
// usage, and (for its admins) deleting it.
import { useId, useState } from 'preact/hooks';
import { api, ApiError, pathOf } from '../../lib/api';
import { dateTime } from '../../lib/format';
import { useAction, useAsync, useTitle } from '../../lib/hooks';
import { Link, navigate } from '../../lib/router';
import { useSession } from '../../lib/session';
import { Button, EmptyState, ErrorBanner, Field, Loading, PageHeader, Select } from '../../components/ui';
import { LiveStatus, type Member, PROJECT_ROLES, type QuotaInfo, QuotaBars, QuotaDialog, useReturnFocus } from '../../components/org';
import { ConfirmDialog } from '../../components/ui';

interface ProjectDetail {
  name: string;
  personal: boolean;
  created_by?: string;
  created_at: number;
  members: Member[];
}

const ROLE_HINT: Record<string, string> = {
  reader: 'reads the project’s jobs, storage and images',
  writer: 'also runs jobs and writes storage',
  manager: 'also adds and removes members',
  admin: 'shares anything and may delete the project',
};

export function ProjectPage({ name }: { name: string }) {
  useTitle(`Project ${name}`);
  const { me, refresh } = useSession();
  const base = `/api/v1/projects/${pathOf(name)}`;
  const project = useAsync((signal) => api.get<ProjectDetail>(base, { signal }), [base]);
  const quota = useAsync(
    (signal) => api.get<{ projects: QuotaInfo[] }>(`/api/v1/quota?project=${encodeURIComponent(name)}`, { signal }),
    [name],
  );
  const [status, setStatus] = useState('');
  const [memberError, setMemberError] = useState<Error | null>(null);
  const [removing, setRemoving] = useState<Member | null>(null);
  const [deleting, setDeleting] = useState(false);
  const [quotaOpen, setQuotaOpen] = useState(false);
  const focus = useReturnFocus();

  const myRole = me.projects.find((p) => p.name === name)?.role ?? null;
  const canManage = me.admin || myRole === 'manager' || myRole === 'admin';
  const isProjectAdmin = me.admin || myRole === 'admin';

  const setRole = async (user: string, role: string) => {
    setMemberError(null);
    try {
      const m = await api.put<Member>(`${base}/members/${pathOf(user)}`, { role });
      project.setData((p) =>
        p && {
          ...p,
          members: p.members.some((x) => x.user === m.user)
            ? p.members.map((x) => (x.user === m.user ? m : x))
            : [...p.members, m],
        },
      );
      setStatus(`${m.user} is now ${m.role} of ${name}.`);
      if (user === me.name) void refresh();
      return true;
    } catch (e) {
      setMemberError(e as Error);
      return false;
    }
  };

  if (project.error) {
    const notFound = project.error instanceof ApiError && (project.error.status === 404 || project.error.status === 403);
    return (
      <>
        <PageHeader title={`Project ${name}`} />
        {notFound ? (
          <EmptyState title="Project not found">
            There is no project <code>{name}</code> that you can see: you may not be a member.{' '}
            <Link href="/projects">Back to your projects</Link>.
          </EmptyState>
        ) : (
          <ErrorBanner error={project.error} />
        )}
      </>
    );
  }
  if (!project.data) return <Loading label={`Loading project ${name}…`} />;
  const p = project.data;

  return (
    <>
      <nav aria-label="Breadcrumb" class="small crumbs">
        <Link href="/projects">Projects</Link> / <span aria-current="page">{p.name}</span>
      </nav>
      <PageHeader title={`Project ${p.name}`}>
        {isProjectAdmin && !p.personal && (
          <Button
            kind="danger"
            onClick={() => {
              focus.remember();
              setDeleting(true);
            }}
          >
            Delete project
          </Button>
        )}
      </PageHeader>
      <p class="muted small">
        {p.personal ? 'Personal project' : 'Shared project'}
        {p.created_by && <> · created by {p.created_by}</>} · {dateTime(p.created_at)}
        {myRole && <> · your role: <strong>{myRole}</strong></>}
      </p>
      <LiveStatus message={status} />

      <div class="grid-2 org-cards">
        <section class="card" aria-labelledby="members-h">
          <h2 id="members-h">Members</h2>
          <ErrorBanner error={memberError} onDismiss={() => setMemberError(null)} />
          {p.members.length === 0 ? (
            <EmptyState title="No members">Add someone below.</EmptyState>
          ) : (
            <div class="table-wrap">
              <table>
                <caption class="visually-hidden">Members of {p.name}</caption>
                <thead>
                  <tr>
                    <th scope="col">User</th>
                    <th scope="col">Role</th>
                    <th scope="col">
                      <span class="visually-hidden">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {p.members.map((m) => (
                    <tr key={m.user}>
                      <td>{m.user}</td>
                      <td>
                        {canManage ? (
                          <select
                            aria-label={`Role of ${m.user}`}
                            value={m.role}
                            onChange={async (e) => {
                              const sel = e.target as HTMLSelectElement;
                              if (!(await setRole(m.user, sel.value))) sel.value = m.role;
                            }}
                          >
                            {PROJECT_ROLES.map((r) => (
                              <option key={r} value={r}>
                                {r}
                              </option>
                            ))}
                          </select>
                        ) : (
                          <span class="badge">{m.role}</span>
                        )}
                      </td>
                      <td class="actions">
                        {(canManage || m.user === me.name) && !(p.personal && m.user === p.name) && (
                          <Button
                            kind="danger"
                            class="btn btn-danger btn-small"
                            aria-label={m.user === me.name ? `Leave ${p.name}` : `Remove ${m.user}`}
                            onClick={() => {
                              focus.remember();
                              setRemoving(m);
                            }}
                          >
                            {m.user === me.name ? 'Leave' : 'Remove'}
                          </Button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {canManage ? (
            <AddMember onAdd={setRole} />
          ) : (
            <p class="hint">Only the project's managers and admins add or remove members.</p>
          )}
        </section>

        <section class="card" aria-labelledby="quota-h">
          <div class="row">
            <h2 id="quota-h">Quota and usage</h2>
            <span class="spacer" />
            {me.admin && (
              <Button
                class="btn btn-small"
                onClick={() => {
                  focus.remember();
                  setQuotaOpen(true);
                }}
              >
                Set quota
              </Button>
            )}
          </div>
          <ErrorBanner error={quota.error} />
          {quota.data?.projects[0] ? (
            <QuotaBars quota={quota.data.projects[0]} subject={`project ${p.name}`} />
          ) : (
            !quota.error && <Loading />
          )}
          {!me.admin && <p class="hint">Administrators set quotas; ask one if the project needs more.</p>}
        </section>
      </div>

      <ConfirmDialog
        title={removing?.user === me.name ? `Leave ${p.name}?` : `Remove ${removing?.user ?? ''}?`}
        open={removing !== null}
        confirmLabel={removing?.user === me.name ? 'Leave project' : 'Remove member'}
        onClose={() => {
          setRemoving(null);
          focus.restore();
        }}
        onConfirm={async () => {
          const m = removing!;
          await api.del(`${base}/members/${pathOf(m.user)}`);
          project.setData((old) => old && { ...old, members: old.members.filter((x) => x.user !== m.user) });
          setStatus(`${m.user} is no longer a member of ${p.name}.`);
          if (m.user === me.name) {
            await refresh();
            navigate('/projects');
          }
        }}
      >
        {removing?.user === me.name ? (
          <p>You lose access to the project's jobs, storage and images.</p>
        ) : (
          <p>
            <strong>{removing?.user}</strong> loses access to the project's jobs, storage and images.
          </p>
        )}
      </ConfirmDialog>

      <ConfirmDialog
        title={`Delete project ${p.name}?`}
        open={deleting}
        confirmLabel="Delete project"
        onClose={() => {
          setDeleting(false);
          focus.restore();
        }}
        onConfirm={async () => {
          await api.del(base);
          await refresh();
          navigate('/projects');
        }}
      >
        <p>The project and its members' access go away. This cannot be undone.</p>
      </ConfirmDialog>

      {me.admin && (
        <QuotaDialog
          kind="projects"
          name={p.name}
          open={quotaOpen}
          onClose={() => {
            setQuotaOpen(false);
            focus.restore();
          }}
          onSaved={(q) => {
            quota.setData(() => ({ projects: [q] }));
            setQuotaOpen(false);
            setStatus(`Quota of ${p.name} saved.`);
            focus.restore();
          }}
        />
      )}
    </>
  );
}

function AddMember({ onAdd }: { onAdd: (user: string, role: string) => Promise<boolean> }) {
  const [user, setUser] = useState('');
  const [role, setRole] = useState('writer');
  const hintId = useId();
  const add = useAction(async () => {
    if (!(await onAdd(user.trim(), role))) throw new Error(''); // the error shows above the table
  });
  return (
    <form
      class="inline-fields add-member"
      aria-label="Add a member"
      onSubmit={async (e) => {
        e.preventDefault();
        if (await add.run()) setUser('');
      }}
    >
      <Field label="User">
        {(id) => (
          <input
            id={id}
            required
            placeholder="user name"
            autoComplete="off"
            value={user}
            onInput={(e) => setUser((e.target as HTMLInputElement).value)}
          />
        )}
      </Field>
      <Field label="Role">
        {(id) => (
          <Select id={id} aria-describedby={hintId} value={role} options={[...PROJECT_ROLES]} onValue={setRole} />
        )}
      </Field>
      <div class="field">
        <Button type="submit" kind="primary" busy={add.busy}>
          Add member
        </Button>
      </div>
      <p class="hint add-member-hint" id={hintId}>
        {role === 'admin' ? 'An' : 'A'} {role} {ROLE_HINT[role]}.
      </p>
    </form>
  );
}
