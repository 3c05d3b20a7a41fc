// Projects: the ones you belong to (admins: all of them), your own quota, and a project's
// page (members, quota) under /projects/NAME.
import { useState } from 'preact/hooks';
import { api } from '../lib/api';
import { dateTime } from '../lib/format';
import { useAction, useAsync, useTitle } from '../lib/hooks';
import { Link, navigate, setSearchParam, useLocation } from '../lib/router';
import { useSession } from '../lib/session';
import { Button, Dialog, EmptyState, ErrorBanner, Field, Loading, PageHeader } from '../components/ui';
import { type MyQuota, type Project, QuotaBars, useReturnFocus } from '../components/org';
import { ProjectPage } from './projects/detail';

export function ProjectsPage({ params }: { params: Record<string, string> }) {
  if (params.name) return <ProjectPage name={params.name} />;
  return <ProjectList />;
}

function ProjectList() {
  useTitle('Projects');
  const { me } = useSession();
  const { search } = useLocation();
  const all = me.admin && search.get('all') === 'true';
  const projects = useAsync((signal) => api.get<Project[]>(`/api/v1/projects${all ? '?all=true' : ''}`, { signal }), [all]);
  const quota = useAsync((signal) => api.get<MyQuota>('/api/v1/quota', { signal }), []);
  const [creating, setCreating] = useState(false);
  const focus = useReturnFocus();

  const list = projects.data ?? [];
  return (
    <>
      <PageHeader title="Projects">
        {me.admin && (
          <label class="row small">
            <input
              type="checkbox"
              checked={all}
              onChange={(e) => setSearchParam('all', (e.target as HTMLInputElement).checked ? 'true' : null)}
            />
            Show all projects (admin)
          </label>
        )}
        <Button
          kind="primary"
          onClick={() => {
            focus.remember();
            setCreating(true);
          }}
        >
          New project
        </Button>
      </PageHeader>
      <ErrorBanner error={projects.error} />
      <section aria-labelledby="projects-h">
        <h2 id="projects-h" class="visually-hidden">
          {all ? 'All projects' : 'Your projects'}
        </h2>
        {projects.loading && !projects.data ? (
          <Loading label="Loading projects…" />
        ) : list.length === 0 && !projects.error ? (
          <EmptyState title="No projects yet">
            Create one with <strong>New project</strong>, or ask a project's manager to add you.
          </EmptyState>
        ) : (
          list.length > 0 && (
            <div class="table-wrap">
              <table>
                <caption class="visually-hidden">{all ? 'All projects' : 'Your projects and your role in each'}</caption>
                <thead>
                  <tr>
                    <th scope="col">Project</th>
                    <th scope="col">Your role</th>
                    <th scope="col">Kind</th>
                    <th scope="col" class="hide-narrow">
                      Created
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {list.map((p) => (
                    <tr key={p.name}>
                      <td>
                        <Link href={`/projects/${encodeURIComponent(p.name)}`}>{p.name}</Link>
                      </td>
                      <td>{p.role ? <span class="badge">{p.role}</span> : <span class="muted">not a member</span>}</td>
                      <td>{p.personal ? 'personal' : 'shared'}</td>
                      <td class="hide-narrow nowrap">{dateTime(p.created_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        )}
      </section>

      <div class="grid-2 org-cards">
        <section class="card" aria-labelledby="my-quota-h">
          <h2 id="my-quota-h">My quota</h2>
          <ErrorBanner error={quota.error} />
          {quota.data ? <QuotaBars quota={quota.data.user} subject={`user ${me.name}`} /> : !quota.error && <Loading />}
        </section>
        {quota.data &&
          quota.data.projects.map((q) => (
            <section class="card" key={q.name} aria-labelledby={`pq-${q.name}`}>
              <h2 id={`pq-${q.name}`}>
                Quota of project <Link href={`/projects/${encodeURIComponent(q.name)}`}>{q.name}</Link>
              </h2>
              <QuotaBars quota={q} subject={`project ${q.name}`} />
            </section>
          ))}
      </div>

      <CreateProjectDialog
        open={creating}
        onClose={() => {
          setCreating(false);
          focus.restore();
        }}
      />
    </>
  );
}

function CreateProjectDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  const { refresh } = useSession();
  const [name, setName] = useState('');
  const create = useAction(async () => {
    const p = await api.post<Project>('/api/v1/projects', { name: name.trim() });
    await refresh(); // whoami lists the new membership
    navigate(`/projects/${encodeURIComponent(p.name)}`);
  });
  return (
    <Dialog title="New project" open={open} onClose={onClose}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          if (await create.run()) setName('');
        }}
      >
        <ErrorBanner error={create.error} />
        <Field
          label="Project name"
          hint="Lowercase letters, digits, '-' and '_', starting with a letter; you become its admin."
        >
          {(id, d) => (
            <input
              id={id}
              aria-describedby={d}
              required
              placeholder="my-project"
              pattern="[a-z][a-z0-9_\-]{0,39}"
              value={name}
              onInput={(e) => setName((e.target as HTMLInputElement).value)}
            />
          )}
        </Field>
        <div class="dialog-actions">
          <Button onClick={onClose}>Cancel</Button>
          <Button kind="primary" type="submit" busy={create.busy}>
            Create project
          </Button>
        </div>
      </form>
    </Dialog>
  );
}
