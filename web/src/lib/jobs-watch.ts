// The one adapter between the console and the live job list: `GET /api/v1/jobs?watch=true`
// with the list's filters, as Server-Sent Events (modules/jobs/README.md):
//   event `snapshot`: {"jobs": [...]}, the list those filters give, first and after every
//                     reconnect (the stream has no event ids: a reconnect starts afresh);
//   event `job`:      one full job (submitted, changed status, new life span): replace the
//                     row with that id, or add it;
//   event `remove`:   {"id"}: the job left the filter or the caller's sight;
//   event `end`:      the session ended (logout, revoked, expired): back to the login page.
// EventSource reconnects by itself after a dropped connection. When the stream cannot be
// opened at all (an older neurod that answers the plain list), the list is loaded once and
// the page refreshes only when the user acts: there is no polling timer.
import { api, ApiError, query, sessionEnded } from './api';
import type { Job } from './jobs';

export interface JobFilters {
  status?: string[]; // pending, running, …, or `active` / `finished`
  project_name?: string;
  owner?: string; // `me` allowed
  name?: string;
  since?: string; // created at or after (RFC 3339)
  limit?: number;
  reverse?: boolean;
  id?: string; // only this job: applied here to the events (the list API has no id filter)
}

export interface WatchHandlers {
  onSnapshot: (jobs: Job[]) => void;
  onJob: (job: Job) => void;
  onRemove?: (id: string) => void;
  onError?: (e: Error) => void;
  // true: events stream in; false: the list was loaded once (refresh() to load it again).
  onLive?: (live: boolean) => void;
}

export interface WatchHandle {
  close: () => void;
  refresh: () => void; // loads the list again when there is no stream (a no-op while live)
  readonly live: boolean;
}

function listQuery(f: JobFilters, watch: boolean): string {
  return query({
    watch: watch ? 'true' : undefined,
    status: f.status,
    project_name: f.project_name,
    owner: f.owner,
    name: f.name,
    since: f.since,
    limit: f.limit,
    reverse: f.reverse ? 'true' : undefined,
  });
}

export function watchJobs(filters: JobFilters, h: WatchHandlers): WatchHandle {
  let closed = false;
  let live = false;
  let source: EventSource | null = null;
  let ctl: AbortController | null = null;
  const keep = (jobs: Job[]) => (filters.id ? jobs.filter((j) => j.id === filters.id) : jobs);

  const setLive = (v: boolean) => {
    live = v;
    h.onLive?.(v);
  };

  // The plain list, once.
  const loadOnce = async () => {
    ctl?.abort();
    ctl = new AbortController();
    try {
      const r = await api.get<{ jobs: Job[] }>(`/api/v1/jobs${listQuery(filters, false)}`, { signal: ctl.signal });
      if (!closed) h.onSnapshot(keep(r.jobs ?? []));
    } catch (e) {
      if (!closed && (e as Error).name !== 'AbortError') h.onError?.(e as Error);
    }
  };

  const openStream = (url: string) => {
    const es = new EventSource(url, { withCredentials: true });
    source = es;
    let opened = false;
    es.addEventListener('open', () => {
      opened = true;
      if (!closed) setLive(true);
    });
    es.addEventListener('snapshot', (ev) => {
      try {
        const d = JSON.parse((ev as MessageEvent).data);
        h.onSnapshot(keep(Array.isArray(d) ? d : (d.jobs ?? [])));
      } catch (e) {
        h.onError?.(e as Error);
      }
    });
    const onJob = (ev: Event) => {
      try {
        const d = JSON.parse((ev as MessageEvent).data);
        const job: Job = d.job ?? d;
        if (!filters.id || job.id === filters.id) h.onJob(job);
      } catch (e) {
        h.onError?.(e as Error);
      }
    };
    es.addEventListener('job', onJob);
    es.addEventListener('remove', (ev) => {
      try {
        const { id } = JSON.parse((ev as MessageEvent).data) as { id: string };
        if (!filters.id || id === filters.id) h.onRemove?.(id);
      } catch (e) {
        h.onError?.(e as Error);
      }
    });
    es.addEventListener('end', () => {
      closed = true;
      es.close();
      source = null;
      sessionEnded();
    });
    es.addEventListener('error', () => {
      if (closed) return;
      // CONNECTING: EventSource retries by itself and the server sends a new snapshot, so
      // the page stays "live". CLOSED (refused, or not a stream): give up on the stream.
      if (es.readyState === EventSource.CLOSED) {
        es.close();
        source = null;
        setLive(false);
        if (!opened) void loadOnce();
        else h.onError?.(new ApiError(0, 'stream_ended', 'live updates stopped: reload the page to resume them'));
      }
    });
  };

  const start = () => openStream(`/api/v1/jobs${listQuery(filters, true)}`);

  start();

  return {
    close() {
      closed = true;
      ctl?.abort();
      source?.close();
      source = null;
    },
    refresh() {
      if (!live && !closed) void loadOnce();
    },
    get live() {
      return live;
    },
  };
}

// Replace the job with the same id in a list, or add it.
export function upsertJob(jobs: Job[], job: Job): Job[] {
  const i = jobs.findIndex((j) => j.id === job.id);
  if (i < 0) return [job, ...jobs];
  const out = jobs.slice();
  out[i] = job;
  return out;
}
