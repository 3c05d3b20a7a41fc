// A job's CPU, memory and GPU charts (uPlot).
//
// Running job: the recent samples first (GET /api/v1/jobs/{id}/telemetry?since=5m&step=1,
// the in-memory one-second samples: {"points": [{"timestamp", "cpu_avg", "memory_avg_bytes",
// "gpu_duty_cycle_avg"?, "gpu_memory_max_bytes"?}]}), then live ones from the WebSocket
// /api/v1/jobs/{id}/top (subprotocol top.apolo.us), about one text message a second:
// {"cpu": cores, "memory": MiB, "memory_bytes", "memory_limit_bytes"?, "timestamp": epoch s,
//  "gpu_duty_cycle"?: %, "gpu_memory"?: MiB, "gpu_memory_bytes"?, "gpu_memory_total_bytes"?}.
// Nothing comes while the job is pending; the socket closes with 1000 when the job finishes.
// Finished job: the stored history (GET …/telemetry, 15 s averages by default).
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { api, query, websocket } from '../../lib/api';
import { bytes } from '../../lib/format';
import { isFinished, type Job, jobPath } from '../../lib/jobs';

interface Point {
  t: number; // epoch seconds
  cpu: number;
  mem: number; // bytes
  gpu?: number; // duty cycle %
  gpuMem?: number; // bytes
}

interface TelemetryPoint {
  timestamp: number;
  cpu_avg: number;
  memory_avg_bytes: number;
  gpu_duty_cycle_avg?: number;
  gpu_memory_max_bytes?: number;
}

interface TopMessage {
  cpu: number;
  memory: number;
  memory_bytes?: number;
  memory_limit_bytes?: number;
  timestamp: number;
  gpu_duty_cycle?: number;
  gpu_memory?: number;
  gpu_memory_bytes?: number;
}

const MAX_POINTS = 900; // 15 minutes of one-second samples

type Mode = 'loading' | 'waiting' | 'live' | 'reconnecting' | 'ended' | 'history' | 'none' | 'unavailable';

export function JobCharts({ job, onSample, onEnded }: { job: Job; onSample?: () => void; onEnded?: () => void }) {
  const [points, setPoints] = useState<Point[]>([]);
  const [mode, setMode] = useState<Mode>('loading');
  const [limit, setLimit] = useState<number | undefined>(undefined);
  const havePoints = useRef(false);
  havePoints.current = points.length > 0;
  const cb = useRef({ onSample, onEnded });
  cb.current = { onSample, onEnded };
  const finished = isFinished(job.status);
  // Restart the streams when the job goes from pending/running to finished or back (restart).
  const phase = finished ? 'finished' : 'active';

  useEffect(() => {
    let stopped = false;
    let ws: WebSocket | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let failures = 0;

    const fromHistory = (ps: TelemetryPoint[]): Point[] =>
      ps.map((p) => ({
        t: p.timestamp,
        cpu: p.cpu_avg,
        mem: p.memory_avg_bytes,
        gpu: p.gpu_duty_cycle_avg,
        gpuMem: p.gpu_memory_max_bytes,
      }));

    if (phase === 'finished') {
      // Watched until it finished: keep the one-second samples rather than the coarser history.
      if (havePoints.current) {
        setMode('ended');
        return;
      }
      setMode('loading');
      api
        .get<{ points: TelemetryPoint[] }>(jobPath(job.id, 'telemetry'))
        .then((r) => {
          if (stopped) return;
          const ps = fromHistory(r.points ?? []);
          setPoints((old) => (ps.length ? ps : old));
          setMode((m) => (ps.length ? 'history' : m === 'loading' ? 'none' : m));
        })
        .catch(() => !stopped && setMode('none'));
      return () => {
        stopped = true;
      };
    }

    setMode(job.status === 'running' ? 'loading' : 'waiting');
    // The recent samples, merged in front of whatever the socket already delivered.
    api
      .get<{ points: TelemetryPoint[] }>(jobPath(job.id, 'telemetry') + query({ since: '5m', step: '1' }))
      .then((r) => {
        if (stopped) return;
        const hist = fromHistory(r.points ?? []);
        if (!hist.length) return;
        setPoints((old) => {
          const first = old.length ? old[0].t : Infinity;
          return [...hist.filter((p) => p.t < first), ...old].slice(-MAX_POINTS);
        });
        setMode((m) => (m === 'loading' || m === 'waiting' ? 'live' : m));
      })
      .catch(() => {
        /* no history yet (or none kept): the socket fills the chart */
      });

    const connect = () => {
      if (stopped) return;
      const sock = websocket(jobPath(job.id, 'top'), 'top.apolo.us');
      ws = sock;
      let opened = false;
      sock.onopen = () => {
        opened = true;
        failures = 0;
      };
      sock.onmessage = (ev) => {
        if (typeof ev.data !== 'string') return;
        let m: TopMessage;
        try {
          m = JSON.parse(ev.data);
        } catch {
          return;
        }
        const p: Point = {
          t: m.timestamp,
          cpu: m.cpu,
          mem: m.memory_bytes ?? m.memory * 2 ** 20,
          gpu: m.gpu_duty_cycle,
          gpuMem: m.gpu_memory_bytes ?? (m.gpu_memory !== undefined ? m.gpu_memory * 2 ** 20 : undefined),
        };
        if (m.memory_limit_bytes) setLimit(m.memory_limit_bytes);
        setPoints((old) => (old.length && old[old.length - 1].t >= p.t ? old : [...old, p].slice(-MAX_POINTS)));
        setMode('live');
        cb.current.onSample?.();
      };
      sock.onclose = (ev) => {
        ws = null;
        if (stopped) return;
        if (ev.code === 1000) {
          setMode('ended');
          cb.current.onEnded?.();
          return;
        }
        failures++;
        if (!opened && failures >= 4) {
          setMode('unavailable');
          return;
        }
        setMode('reconnecting');
        timer = setTimeout(connect, Math.min(15000, 1000 * 2 ** (failures - 1)));
      };
    };
    connect();
    return () => {
      stopped = true;
      clearTimeout(timer);
      ws?.close(1000);
    };
  }, [job.id, phase]);

  const res = job.container.resources;
  const hasGpu = res.nvidia_gpu > 0 || points.some((p) => p.gpu !== undefined);
  const last = points[points.length - 1];
  const times = points.map((p) => p.t);
  const memLimit = limit ?? res.memory;

  const note: Record<Mode, string> = {
    loading: 'Loading…',
    waiting: 'Waiting for the job to start: samples come once it runs.',
    live: '',
    reconnecting: 'Connection lost; reconnecting…',
    ended: 'The job finished: no more samples.',
    history: 'The job finished: its recorded history (averages per step).',
    none: 'No telemetry for this finished job.',
    unavailable: 'Telemetry is unavailable for this job (no executor in this neurod?).',
  };

  return (
    <section class="card charts-card" aria-labelledby="charts-heading" data-samples={points.length}>
      <div class="card-head">
        <h2 id="charts-heading">Resources</h2>
        {note[mode] && (
          <span class="muted small" role="status">
            {note[mode]}
          </span>
        )}
      </div>
      {points.length === 0 ? (
        <p class="charts-empty muted">{mode === 'none' || mode === 'unavailable' ? note[mode] : finished ? 'No samples.' : 'No samples yet.'}</p>
      ) : (
        <div class="charts">
          <TimeChart
            title="CPU"
            now={last ? `${last.cpu.toFixed(2)} cores` : ''}
            yLabel="cores"
            times={times}
            series={[
              { label: 'CPU used', stroke: '#2b4eff', fill: 'rgba(43,78,255,0.12)', values: points.map((p) => p.cpu) },
              { label: 'Requested', stroke: '#9aa3b8', dash: [4, 4], reference: true, values: times.map(() => res.cpu) },
            ]}
            format={(v) => `${+v.toFixed(3)}`}
            minTop={0.05}
          />
          <TimeChart
            title="Memory"
            now={last ? bytes(last.mem) : ''}
            yLabel="memory"
            times={times}
            series={[
              { label: 'Memory used', stroke: '#1d7a3f', fill: 'rgba(29,122,63,0.12)', values: points.map((p) => p.mem) },
              { label: 'Limit', stroke: '#c4242b', dash: [4, 4], reference: true, values: times.map(() => memLimit) },
            ]}
            format={(v) => bytes(v)}
            minTop={4 * 2 ** 20}
          />
          {hasGpu && (
            <TimeChart
              title="GPU"
              now={last && last.gpu !== undefined ? `${Math.round(last.gpu)} %` : ''}
              yLabel="utilisation %"
              times={times}
              range={[0, 100]}
              series={[{ label: 'GPU utilisation', stroke: '#9a6200', fill: 'rgba(154,98,0,0.12)', values: points.map((p) => p.gpu ?? null) }]}
              format={(v) => `${Math.round(v)} %`}
            />
          )}
        </div>
      )}
    </section>
  );
}

interface ChartSeries {
  label: string;
  stroke: string;
  fill?: string;
  dash?: number[];
  reference?: boolean;
  values: (number | null)[];
}

const CHART_HEIGHT = 150;

function TimeChart({
  title,
  now,
  yLabel,
  times,
  series,
  format,
  range,
  minTop = 1e-6,
}: {
  title: string;
  now: string;
  yLabel: string;
  times: number[];
  series: ChartSeries[];
  format: (v: number) => string;
  range?: [number, number];
  minTop?: number; // the y axis reaches at least this high
}) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const fmt = useRef(format);
  fmt.current = format;
  const data = [times, ...series.map((s) => s.values)] as uPlot.AlignedData;

  useEffect(() => {
    const box = el.current;
    if (!box) return;
    const opts: uPlot.Options = {
      width: Math.max(200, box.clientWidth),
      height: CHART_HEIGHT,
      cursor: { drag: { x: false, y: false } },
      scales: {
        // At least a minute wide, so the first samples do not fill the axis with milliseconds.
        x: { time: true, range: (_u, min, max) => [Math.min(min, max - 60), max] },
        y: range ? { range } : { range: (_u, _min, max) => [0, Math.max(max * 1.15, minTop)] },
      },
      axes: [
        { stroke: '#5c6475', grid: { stroke: '#eceef4' }, ticks: { stroke: '#d9dde7' } },
        {
          label: yLabel,
          stroke: '#5c6475',
          size: 64,
          grid: { stroke: '#eceef4' },
          ticks: { stroke: '#d9dde7' },
          values: (_u, vals) => vals.map((v) => fmt.current(v)),
        },
      ],
      series: [
        { label: 'Time', value: (_u: uPlot, v: number | null) => (v ? new Date(v * 1000).toLocaleTimeString() : 'latest') },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.stroke,
          fill: s.fill,
          dash: s.dash,
          auto: !s.reference, // reference lines (request, limit) do not stretch the axis
          width: 1.5,
          // Dots only while there are too few samples for a line to show.
          points: { show: (_u: uPlot, _sidx: number, i0: number, i1: number) => i1 - i0 < 3 && !s.reference },
          // Off the chart the legend shows the latest value.
          value: (u: uPlot, v: number | null, sidx: number, idx: number | null) => {
            if (idx === null || idx === undefined) {
              const vals = u.data[sidx] as (number | null)[];
              v = vals.length ? vals[vals.length - 1] : null;
            }
            return v === null || v === undefined ? '—' : fmt.current(v);
          },
        })),
      ],
      legend: { live: true },
    };
    const u = new uPlot(opts, data, box);
    plot.current = u;
    const ro = new ResizeObserver(() => {
      const w = Math.max(200, box.clientWidth);
      if (w !== u.width) u.setSize({ width: w, height: CHART_HEIGHT });
    });
    ro.observe(box);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [series.length]);

  useEffect(() => {
    plot.current?.setData(data);
  });

  return (
    <figure class="chart" aria-label={`${title} chart`}>
      <figcaption class="chart-title">
        <span>{title}</span>
        {now && <span class="chart-now">{now}</span>}
      </figcaption>
      <div ref={el} class="chart-plot" role="img" aria-label={`${title} over time${now ? `, now ${now}` : ''}`} />
    </figure>
  );
}
