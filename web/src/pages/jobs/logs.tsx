// A job's log. A job that has not finished is followed over the WebSocket
// `/api/v1/jobs/{id}/log_ws?timestamps=true` (subprotocol logs.apolo.us; the session cookie
// authenticates it): text frames of whole `\n`-terminated lines, each "<RFC 3339 ns time> <text>".
// Close 1000 = the log ended (the job finished) or was deleted; 1013 = we fell behind; 1001 =
// neurod stops. On any close but 1000 it reconnects with `since=<last line's time>` and drops
// the lines it already has. A finished job's log is read once: GET …/log.
// The view keeps the last MAX_LINES lines, follows the end unless the user scrolled up, and
// has a Follow toggle.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { api, query, websocket } from '../../lib/api';
import { getJob, isFinished, type Job, jobPath } from '../../lib/jobs';

export const MAX_LINES = 5000;

type State = 'connecting' | 'streaming' | 'reconnecting' | 'ended' | 'loaded' | 'error';

export function LogView({ job, onEnded, onLine }: { job: Job; onEnded?: () => void; onLine?: () => void }) {
  const finishedAtStart = useRef(isFinished(job.status));
  const lines = useRef<string[]>([]);
  const dropped = useRef(0);
  const [version, setVersion] = useState(0);
  const [state, setState] = useState<State>('connecting');
  const [message, setMessage] = useState('');
  const [follow, setFollow] = useState(true);
  const box = useRef<HTMLPreElement>(null);
  const cb = useRef({ onEnded, onLine });
  cb.current = { onEnded, onLine };

  // Batches renders to one per frame however fast lines come.
  const pending = useRef(false);
  const bump = () => {
    if (pending.current) return;
    pending.current = true;
    requestAnimationFrame(() => {
      pending.current = false;
      setVersion((v) => v + 1);
    });
  };
  const push = (text: string[]) => {
    const buf = lines.current;
    buf.push(...text);
    if (buf.length > MAX_LINES) {
      dropped.current += buf.length - MAX_LINES;
      buf.splice(0, buf.length - MAX_LINES);
    }
    bump();
  };

  useEffect(() => {
    let stopped = false;
    let ws: WebSocket | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let lastTs = '';
    let atLastTs = 0; // lines seen with exactly lastTs (to skip them after a reconnect)
    let failures = 0;
    let partial = '';

    const loadAll = async () => {
      setState('connecting');
      try {
        const text = await api.get<string>(jobPath(job.id, 'log'), { headers: { Accept: 'text/plain' } });
        if (stopped) return;
        lines.current = [];
        dropped.current = 0;
        const all = String(text ?? '').split('\n');
        if (all.length && all[all.length - 1] === '') all.pop();
        push(all);
        setState('loaded');
      } catch (e) {
        if (stopped) return;
        setState('error');
        setMessage((e as Error).message);
      }
    };

    const connect = () => {
      if (stopped) return;
      setState(failures ? 'reconnecting' : 'connecting');
      let seen = 0;
      let skipEqual = atLastTs;
      const since = lastTs;
      const sock = websocket(jobPath(job.id, 'log_ws') + query({ timestamps: 'true', since: since || undefined }), 'logs.apolo.us');
      ws = sock;
      let opened = false;
      sock.onopen = () => {
        opened = true;
        failures = 0;
        setState('streaming');
        setMessage('');
      };
      sock.onmessage = (ev) => {
        if (typeof ev.data !== 'string') return;
        const chunk = partial + ev.data;
        const parts = chunk.split('\n');
        partial = parts.pop() ?? '';
        const out: string[] = [];
        for (const rec of parts) {
          const sp = rec.indexOf(' ');
          const ts = sp > 0 ? rec.slice(0, sp) : '';
          const text = sp > 0 ? rec.slice(sp + 1) : rec;
          if (since && ts) {
            if (ts < since) continue;
            if (ts === since && skipEqual > 0) {
              skipEqual--;
              continue;
            }
          }
          if (ts) {
            if (ts === lastTs) atLastTs++;
            else {
              lastTs = ts;
              atLastTs = 1;
            }
          }
          out.push(text);
          seen++;
        }
        if (out.length) {
          push(out);
          cb.current.onLine?.();
        }
      };
      sock.onclose = (ev) => {
        ws = null;
        if (stopped) return;
        if (partial) {
          push([partial]);
          partial = '';
        }
        if (ev.code === 1000) {
          setState('ended');
          setMessage(ev.reason || 'the log ended');
          cb.current.onEnded?.();
          return;
        }
        failures++;
        if (!opened) {
          // Refused before it opened (gone, no permission, neurod down): ask why.
          getJob(job.id)
            .then((j) => {
              if (stopped) return;
              if (isFinished(j.status) && !lastTs && !seen) {
                cb.current.onEnded?.();
                void loadAll();
              } else retry();
            })
            .catch((e) => {
              if (stopped) return;
              if ((e as { status?: number }).status === 0) retry();
              else {
                setState('error');
                setMessage((e as Error).message);
              }
            });
          return;
        }
        retry(ev.code === 1013 ? 0 : undefined);
      };
    };

    const retry = (delay?: number) => {
      const ms = delay ?? Math.min(15000, 1000 * 2 ** Math.max(0, failures - 1));
      setState('reconnecting');
      setMessage(`connection lost; reconnecting in ${Math.round(ms / 1000)} s`);
      timer = setTimeout(connect, ms);
    };

    if (finishedAtStart.current) void loadAll();
    else connect();
    return () => {
      stopped = true;
      clearTimeout(timer);
      ws?.close(1000);
    };
  }, [job.id]);

  // Follow: keep the end in view after each render while following.
  useLayoutEffect(() => {
    const el = box.current;
    if (el && follow) el.scrollTop = el.scrollHeight;
  }, [version, follow]);

  const onScroll = () => {
    const el = box.current;
    if (!el) return;
    const atEnd = el.scrollTop + el.clientHeight >= el.scrollHeight - 24;
    if (atEnd !== follow) setFollow(atEnd);
  };

  const text = lines.current.join('\n');
  const stateText: Record<State, string> = {
    connecting: 'Connecting…',
    streaming: 'Live',
    reconnecting: 'Reconnecting…',
    ended: 'Log ended',
    loaded: 'Complete log',
    error: 'Unavailable',
  };

  return (
    <section class="card log-card" aria-labelledby="log-heading">
      <div class="card-head">
        <h2 id="log-heading">Logs</h2>
        <span class={`log-state log-state-${state}`} role="status">
          {stateText[state]}
          {message && state !== 'streaming' ? `: ${message}` : ''}
        </span>
        <span class="spacer" />
        <button
          type="button"
          class="btn btn-small"
          aria-pressed={follow ? 'true' : 'false'}
          onClick={() => {
            setFollow(!follow);
          }}
        >
          Follow
        </button>
        <a class="btn btn-small" href={jobPath(job.id, 'log')} target="_blank" rel="noopener">
          Raw log
        </a>
      </div>
      {dropped.current > 0 && (
        <p class="hint">
          Showing the last {MAX_LINES.toLocaleString()} lines ({dropped.current.toLocaleString()} earlier lines hidden; the raw log has
          them all).
        </p>
      )}
      <pre class="log job-log" ref={box} onScroll={onScroll} tabIndex={0} aria-label="Job log" aria-live="off">
        {text}
        {!text && (state === 'streaming' || state === 'connecting') && !isFinished(job.status) && (
          <span class="muted">{waitingText(job)}</span>
        )}
        {!text && (state === 'loaded' || state === 'ended') && <span class="muted">(the log is empty)</span>}
      </pre>
    </section>
  );
}

function waitingText(job: Job): string {
  return job.status === 'pending' ? 'Waiting for the job to start…' : 'Waiting for output…';
}
