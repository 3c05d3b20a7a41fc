// The jobs list: the jobs the user can see (their own, their projects', shared with them),
// newest first, live through the watch adapter (lib/jobs-watch.ts).
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { EmptyState, ErrorBanner, Field, Loading, PageHeader, Select, StatusBadge, Tabs } from '../../components/ui';
import { ago } from '../../lib/format';
import { useNow, useTitle } from '../../lib/hooks';
import { byCreatedDesc, isActive, type Job, jobTitle, quoteArgv, resourcesText } from '../../lib/jobs';
import { type WatchHandle, upsertJob, watchJobs } from '../../lib/jobs-watch';
import { Link, setSearchParam, useLocation } from '../../lib/router';
import { useSession } from '../../lib/session';
import { KillButton } from './kill';

const TABS = [
  { id: 'all', label: 'All', status: undefined },
  { id: 'active', label: 'Active', status: ['active'] },
  { id: 'finished', label: 'Finished', status: ['finished'] },
] as const;

const LIMIT = 500;

export function JobsPage(_props: { params: Record<string, string> }) {
  useTitle('Jobs');
  const { me } = useSession();
  const { search } = useLocation();
  const tab = TABS.find((t) => t.id === search.get('tab')) ?? TABS[0];
  const project = search.get('project') ?? '';
  const [text, setText] = useState(search.get('q') ?? '');
  const [jobs, setJobs] = useState<Job[] | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [live, setLive] = useState<boolean | null>(null);
  const watch = useRef<WatchHandle | null>(null);
  const now = useNow(5000);

  useEffect(() => {
    setJobs(null);
    setError(null);
    const w = watchJobs(
      { status: tab.status ? [...tab.status] : undefined, project_name: project || undefined, reverse: true, limit: LIMIT },
      {
        onSnapshot: (js) => {
          setJobs(js);
          setError(null);
        },
        onJob: (j) => setJobs((old) => upsertJob(old ?? [], j)),
        onRemove: (id) => setJobs((old) => (old ?? []).filter((j) => j.id !== id)),
        onError: setError,
        onLive: setLive,
      },
    );
    watch.current = w;
    return () => w.close();
  }, [tab.id, project]);

  const refresh = () => watch.current?.refresh();

  const shown = useMemo(() => {
    const q = text.trim().toLowerCase();
    const list = (jobs ?? []).filter(
      (j) =>
        !q ||
        j.id.toLowerCase().includes(q) ||
        (j.name ?? '').toLowerCase().includes(q) ||
        j.container.image.toLowerCase().includes(q) ||
        j.tags.some((t) => t.toLowerCase().includes(q)),
    );
    return list.sort(byCreatedDesc);
  }, [jobs, text]);

  const projects = me.projects.map((p) => p.name);

  return (
    <>
      <PageHeader title="Jobs">
        {live === false && (
          <button type="button" class="btn" onClick={refresh}>
            Refresh
          </button>
        )}
        <Link href="/jobs/new" class="btn btn-primary">
          Run a job
        </Link>
      </PageHeader>

      <div class="jobs-toolbar">
        <Tabs
          label="Which jobs"
          tabs={TABS.map((t) => ({ id: t.id, label: t.label }))}
          selected={tab.id}
          onSelect={(id) => setSearchParam('tab', id === 'all' ? null : id)}
        />
        <div class="inline-fields">
          <Field label="Project">
            {(id) => (
              <Select
                id={id}
                value={project}
                options={[{ value: '', label: 'All projects' }, ...projects]}
                onValue={(v) => setSearchParam('project', v)}
              />
            )}
          </Field>
          <Field label="Search">
            {(id) => (
              <input
                id={id}
                type="search"
                placeholder="name, id, image or tag"
                value={text}
                onInput={(e) => {
                  const v = (e.target as HTMLInputElement).value;
                  setText(v);
                  setSearchParam('q', v);
                }}
              />
            )}
          </Field>
        </div>
      </div>

      {live === false && (
        <p class="hint live-note" role="status">
          Live updates unavailable: the list shows the state when it was loaded. Use Refresh to load it again.
        </p>
      )}
      <ErrorBanner error={error} onDismiss={() => setError(null)} />

      {jobs === null ? (
        !error && <Loading label="Loading jobs…" />
      ) : jobs.length === 0 ? (
        tab.id === 'all' && !project ? (
          <EmptyState title="No jobs yet">
            <p>Run a container on the cluster: pick a preset and an image, and follow its logs here.</p>
            <Link href="/jobs/new" class="btn btn-primary">
              Run a job
            </Link>
          </EmptyState>
        ) : (
          <EmptyState title={tab.id === 'active' ? 'No active jobs' : 'No jobs here'}>
            <p>
              {tab.id === 'active' ? 'Nothing is pending or running' : 'No jobs match these filters'}
              {project ? ` in project ${project}` : ''}.{' '}
              <Link href="/jobs">Show all jobs</Link> or <Link href="/jobs/new">run a job</Link>.
            </p>
          </EmptyState>
        )
      ) : shown.length === 0 ? (
        <EmptyState title="No job matches the search">
          <p>Nothing has “{text}” in its name, id, image or tags.</p>
        </EmptyState>
      ) : (
        <div class="table-wrap">
          <table class="jobs-table">
            <caption class="visually-hidden">Jobs, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Status</th>
                <th scope="col" class="hide-narrow">
                  Image and command
                </th>
                <th scope="col" class="hide-narrow">
                  Resources
                </th>
                <th scope="col" class="hide-narrow">
                  Owner
                </th>
                <th scope="col">When</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {shown.map((j) => (
                <JobRow key={j.id} job={j} now={now} onChanged={refresh} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {jobs !== null && jobs.length >= LIMIT && (
        <p class="hint">Showing the newest {LIMIT} jobs: filter by status or project to see others.</p>
      )}
    </>
  );
}

function JobRow({ job, now, onChanged }: { job: Job; now: number; onChanged: () => void }) {
  const cmd = quoteArgv(job.container.command);
  const started = job.history.started_at;
  return (
    <tr data-job-id={job.id}>
      <td>
        <Link href={`/jobs/${encodeURIComponent(job.id)}`} class="job-link">
          {jobTitle(job)}
        </Link>
        {job.name && <div class="muted small mono hide-narrow">{job.id}</div>}
      </td>
      <td>
        <StatusBadge status={job.status} />
        {job.history.reason && <div class="muted small">{job.history.reason}</div>}
      </td>
      <td class="mono small hide-narrow">
        <div class="cell-clip" title={job.container.image}>
          {job.container.image}
        </div>
        <div class="cell-clip muted" title={cmd}>
          {cmd || '(the image’s command)'}
        </div>
      </td>
      <td class="small hide-narrow">
        {job.preset_name && <div>{job.preset_name}</div>}
        <div class="muted">{resourcesText(job.container.resources)}</div>
      </td>
      <td class="small hide-narrow">
        {job.owner}
        {job.project_name !== job.owner && <div class="muted">{job.project_name}</div>}
      </td>
      <td class="small nowrap">
        <span title={`created ${job.history.created_at}`}>{ago(job.history.created_at, now)}</span>
        {started && isActive(job.status) && <div class="muted">started {ago(started, now)}</div>}
        {job.history.finished_at && <div class="muted">ended {ago(job.history.finished_at, now)}</div>}
      </td>
      <td class="actions">
        {isActive(job.status) && <KillButton job={job} small onKilled={onChanged} />}{' '}
        <Link href={`/jobs/${encodeURIComponent(job.id)}`} class="btn btn-small" aria-label={`Open ${jobTitle(job)}`}>
          Open
        </Link>
      </td>
    </tr>
  );
}
