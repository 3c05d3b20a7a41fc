// The one adapter between the console and the live job-list stream.
//
// Contract (the stream another change adds to neurod): `GET /api/v1/jobs?watch=true&<filters>`
// answers `text/event-stream` with first an event `snapshot` whose data is {"jobs": [...]}
// (the list the same filters give without `watch`), then an event `job` per change whose
// data is one full job JSON (the page replaces the row with that id, or adds it).
//
// Fallback: a neurod without the stream answers the plain list (JSON) and ignores `watch`.
// Then that answer is the snapshot, `live` is false, and the page refreshes only when the
// user acts (`refresh()`): there is no timer polling loop.
//
// The first request is a fetch() that asks for text/event-stream: when the answer is a
// stream it is dropped and an EventSource opened (it reconnects by itself); when it is JSON
// it is used as it is. (An EventSource pointed at a JSON answer would fail with a console
// error and give no body.)
import { api, ApiError, query } from './api';
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

  const start = async () => {
    const url = `/api/v1/jobs${listQuery(filters, true)}`;
    ctl = new AbortController();
    try {
      const res = await api.get<Response>(url, {
        raw: true,
        signal: ctl.signal,
        headers: { Accept: 'text/event-stream, application/json;q=0.5' },
      });
      if (closed) return;
      const type = res.headers.get('Content-Type') || '';
      if (type.includes('text/event-stream')) {
        ctl.abort(); // the EventSource asks again and keeps the stream open
        openStream(url);
        return;
      }
      const body = (await res.json()) as { jobs?: Job[] };
      if (closed) return;
      setLive(false);
      h.onSnapshot(keep(body.jobs ?? []));
    } catch (e) {
      if (closed || (e as Error).name === 'AbortError') return;
      setLive(false);
      h.onError?.(e as Error);
    }
  };

  void start();

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
