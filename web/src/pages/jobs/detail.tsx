// One job: its status (live through the watch adapter; without the stream the job is read
// again whenever its log or telemetry stream says something changed), actions (kill, share,
// open its HTTP port), logs, resource charts, properties and status history.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ShareDialog } from '../../components/share';
import { Button, EmptyState, ErrorBanner, Loading, PageHeader, StatusBadge } from '../../components/ui';
import { ApiError } from '../../lib/api';
import { ago, dateTime, duration } from '../../lib/format';
import { useNow, useTitle } from '../../lib/hooks';
import { getJob, isActive, isFinished, type Job, jobPath, jobTitle, quoteArgv, resourcesText } from '../../lib/jobs';
import { watchJobs } from '../../lib/jobs-watch';
import { Link } from '../../lib/router';
import { JobCharts } from './charts';
import { KillButton } from './kill';
import { LogView } from './logs';

export function JobPage({ params }: { params: Record<string, string> }) {
  const id = params.id;
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [shareOpen, setShareOpen] = useState(false);
  useTitle(job ? jobTitle(job) : id);
  const now = useNow(1000);
  const inflight = useRef<Promise<void> | null>(null);

  // Reads the job again (one at a time; a second call while one runs waits for it).
  const reload = useCallback(async () => {
    if (inflight.current) return inflight.current;
    const p = getJob(id)
      .then((j) => {
        setJob(j);
        setError(null);
      })
      .catch((e) => setError(e as Error))
      .finally(() => {
        inflight.current = null;
      });
    inflight.current = p;
    return p;
  }, [id]);

  useEffect(() => {
    setJob(null);
    void reload();
  }, [id]);

  // Live status: the watch adapter narrowed to this job (project, name, created at or after).
  const jobKey = job ? `${job.id}|${job.project_name}|${job.name ?? ''}|${job.history.created_at}` : '';
  useEffect(() => {
    if (!job) return;
    const w = watchJobs(
      { project_name: job.project_name, name: job.name ?? undefined, since: job.history.created_at, limit: 20, id: job.id },
      {
        onSnapshot: () => {
          /* the page already has the job */
        },
        onJob: (j) => {
          // Events may carry the job without its status history: read it whole.
          if (j.statuses) setJob(j);
          else void reload();
        },
        onError: () => {
          /* the page works without the stream */
        },
      },
    );
    return () => w.close();
  }, [jobKey]);

  // Without the stream, the log and telemetry streams tell when to look again.
  const statusRef = useRef<string>('');
  statusRef.current = job?.status ?? '';
  const onStarted = useCallback(() => {
    if (statusRef.current === 'pending') void reload();
  }, [reload]);

  if (!job) {
    if (error)
      return (
        <>
          <PageHeader title={id} />
          <ErrorBanner error={error} />
          {error instanceof ApiError && error.status === 404 && (
            <EmptyState title="No such job">
              <p>
                It does not exist or you may not see it. <Link href="/jobs">Back to your jobs</Link>.
              </p>
            </EmptyState>
          )}
        </>
      );
    return <Loading label="Loading the job…" />;
  }

  const http = job.container.http;
  const title = jobTitle(job);
  const h = job.history;
  const failedWhy = (job.status === 'failed' || job.status === 'cancelled') && (h.reason || h.description);

  return (
    <>
      <nav aria-label="Breadcrumb" class="breadcrumb small">
        <Link href="/jobs">Jobs</Link> <span aria-hidden="true">/</span> {title}
      </nav>
      <header class="page-header job-header">
        <h1>{title}</h1>
        <StatusBadge status={job.status} />
        {h.reason && <span class="muted">{h.reason}</span>}
        <div class="page-actions">
          {http && job.status === 'running' && (
            <a class="btn" href={`${jobPath(job.id, 'http')}/`} target="_blank" rel="noopener">
              Open HTTP
            </a>
          )}
          <Button onClick={() => setShareOpen(true)}>Share</Button>
          {isActive(job.status) && <KillButton job={job} onKilled={() => void reload()} />}
        </div>
      </header>
      <ErrorBanner error={error} onDismiss={() => setError(null)} />
      {failedWhy && (
        <div class={`banner ${job.status === 'failed' ? 'banner-error' : 'banner-warn'}`} role="status">
          <span class="banner-text">
            {job.status === 'failed' ? 'Failed' : 'Cancelled'}
            {h.reason ? `: ${h.reason}` : ''}
            {h.description ? ` — ${h.description}` : ''}
            {h.exit_code !== null && h.exit_code !== undefined ? ` (exit code ${h.exit_code})` : ''}
          </span>
        </div>
      )}
      {job.status === 'pending' && h.description && <p class="hint">{h.description}</p>}

      <dl class="job-summary">
        <div>
          <dt>Image</dt>
          <dd class="mono">{job.container.image}</dd>
        </div>
        <div>
          <dt>Resources</dt>
          <dd>
            {job.preset_name ? `${job.preset_name}: ` : ''}
            {resourcesText(job.container.resources)}
          </dd>
        </div>
        <div>
          <dt>Owner</dt>
          <dd>
            {job.owner}
            {job.project_name !== job.owner ? ` in ${job.project_name}` : ''}
          </dd>
        </div>
        <div>
          <dt>{h.finished_at ? 'Ran' : job.status === 'running' ? 'Running for' : 'Submitted'}</dt>
          <dd>
            {h.finished_at
              ? duration(h.run_time_seconds * 1000)
              : job.status === 'running' && h.started_at
                ? duration(Math.max(now, Date.now()) - Date.parse(h.started_at))
                : ago(h.created_at, now)}
          </dd>
        </div>
      </dl>

      <div class="job-main">
        <LogView job={job} onEnded={() => void reload()} onLine={onStarted} />
        <JobCharts job={job} onSample={onStarted} onEnded={() => void reload()} />
      </div>

      <div class="grid-2 job-details">
        <section class="card" aria-labelledby="props-heading">
          <h2 id="props-heading">Details</h2>
          <JobProps job={job} />
        </section>
        <section class="card" aria-labelledby="history-heading">
          <h2 id="history-heading">Status history</h2>
          <StatusHistory job={job} />
        </section>
      </div>

      <ShareDialog uri={job.uri || `job://${job.cluster_name}/${job.project_name}/${job.id}`} title={`job ${title}`} open={shareOpen} onClose={() => setShareOpen(false)} />
    </>
  );
}

function JobProps({ job }: { job: Job }) {
  const c = job.container;
  const h = job.history;
  const envNames = Object.keys(c.env);
  const secretEnv = Object.entries(c.secret_env);
  return (
    <dl class="props">
      <dt>Id</dt>
      <dd class="mono">{job.id}</dd>
      {job.name && (
        <>
          <dt>Name</dt>
          <dd>{job.name}</dd>
        </>
      )}
      <dt>Image</dt>
      <dd class="mono">{c.image}</dd>
      <dt>Command</dt>
      <dd class="mono">{quoteArgv(c.command) || <span class="muted">the image's default</span>}</dd>
      {c.entrypoint.length > 0 && (
        <>
          <dt>Entrypoint</dt>
          <dd class="mono">{quoteArgv(c.entrypoint)}</dd>
        </>
      )}
      {c.working_dir && (
        <>
          <dt>Working dir</dt>
          <dd class="mono">{c.working_dir}</dd>
        </>
      )}
      <dt>Preset</dt>
      <dd>{job.preset_name ?? <span class="muted">explicit resources</span>}</dd>
      <dt>Resources</dt>
      <dd>
        {resourcesText(c.resources)}
        {c.resources.shm ? ', extended /dev/shm' : ''}
      </dd>
      <dt>Volumes</dt>
      <dd>
        {c.volumes.length + c.secret_volumes.length + c.disk_volumes.length === 0 ? (
          <span class="muted">none</span>
        ) : (
          <ul class="plain-list mono small">
            {c.volumes.map((v) => (
              <li key={v.dst_path}>
                {v.src_storage_uri} → {v.dst_path} {v.read_only ? '(read-only)' : '(read-write)'}
              </li>
            ))}
            {c.secret_volumes.map((v) => (
              <li key={v.dst_path}>
                {v.src_secret_uri} → {v.dst_path} (secret file)
              </li>
            ))}
            {c.disk_volumes.map((v) => (
              <li key={v.dst_path}>
                {v.src_disk_uri} → {v.dst_path}
              </li>
            ))}
          </ul>
        )}
      </dd>
      <dt>Environment</dt>
      <dd>
        {envNames.length + secretEnv.length === 0 ? (
          <span class="muted">none</span>
        ) : (
          <ul class="plain-list mono small">
            {envNames.map((k) => (
              <li key={k}>
                {k}={c.env[k]}
              </li>
            ))}
            {secretEnv.map(([k, uri]) => (
              <li key={k}>
                {k} <span class="muted">from {uri}</span>
              </li>
            ))}
          </ul>
        )}
      </dd>
      {c.http && (
        <>
          <dt>HTTP port</dt>
          <dd>
            {c.http.port} {c.http.requires_auth ? '(authentication required)' : '(open to anyone)'}
          </dd>
        </>
      )}
      <dt>Owner</dt>
      <dd>{job.owner}</dd>
      <dt>Project</dt>
      <dd>{job.project_name}</dd>
      {job.tags.length > 0 && (
        <>
          <dt>Tags</dt>
          <dd>
            {job.tags.map((t) => (
              <span key={t} class="tag mono">
                {t}
              </span>
            ))}
          </dd>
        </>
      )}
      {job.description && (
        <>
          <dt>Description</dt>
          <dd>{job.description}</dd>
        </>
      )}
      <dt>Created</dt>
      <dd>{dateTime(h.created_at)}</dd>
      <dt>Started</dt>
      <dd>{dateTime(h.started_at)}</dd>
      <dt>Finished</dt>
      <dd>{dateTime(h.finished_at)}</dd>
      <dt>Run time</dt>
      <dd>{duration(h.run_time_seconds * 1000)}</dd>
      {isFinished(job.status) && (
        <>
          <dt>Exit code</dt>
          <dd>{h.exit_code ?? '—'}</dd>
        </>
      )}
      <dt>Life span</dt>
      <dd>{job.max_run_time_minutes ? duration(job.max_run_time_minutes * 60000) : <span class="muted">no limit</span>}</dd>
      <dt>Restart policy</dt>
      <dd>
        {job.restart_policy}
        {job.restarts ? ` (${job.restarts} restarts)` : ''}
      </dd>
      <dt>Priority</dt>
      <dd>{job.priority}</dd>
    </dl>
  );
}

function StatusHistory({ job }: { job: Job }) {
  const items = job.statuses ?? [];
  if (!items.length) return <p class="muted">No history.</p>;
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th scope="col">Status</th>
            <th scope="col">Reason</th>
            <th scope="col">When</th>
          </tr>
        </thead>
        <tbody>
          {items.map((s, i) => (
            <tr key={i}>
              <td>
                <StatusBadge status={s.status} />
              </td>
              <td>
                {s.reason || <span class="muted">—</span>}
                {s.description && <div class="muted small">{s.description}</div>}
                {s.exit_code !== null && s.exit_code !== undefined && <div class="muted small">exit code {s.exit_code}</div>}
              </td>
              <td class="small nowrap">{dateTime(s.transition_time)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
