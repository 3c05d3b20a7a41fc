// Building blocks of the organisation pages (projects, users, audit, account): the API's
// shapes for quotas, members and principals, quota bars, the quota dialog, a confirm
// dialog and a copy-once secret box.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../lib/api';
import { bytes } from '../lib/format';
import { useAction } from '../lib/hooks';
import { Button, Dialog, ErrorBanner, Field, Progress } from './ui';

export interface Limits {
  max_running_jobs: number | null;
  cpu_hours: number | null;
  gpu_hours: number | null;
  storage_bytes: number | null;
  period: string;
}

export interface Usage {
  running_jobs: number;
  cpu_hours: number;
  gpu_hours: number;
  storage_bytes: number;
  window_start: number | null;
}

export interface QuotaInfo {
  name: string;
  limits: Limits;
  usage: Usage;
}

export interface MyQuota {
  user: QuotaInfo;
  projects: QuotaInfo[];
}

export interface Project {
  name: string;
  personal: boolean;
  created_by?: string;
  created_at: number;
  role: string | null;
}

export interface Member {
  user: string;
  role: string;
}

export interface Principal {
  name: string;
  kind: 'user' | 'service' | 'role' | string;
  email?: string;
  owner?: string;
  admin?: boolean;
  has_password?: boolean;
  builtin?: boolean;
  created_at: number;
}

export interface Grant {
  uri: string;
  action: string;
  via?: string;
}

export const PROJECT_ROLES = ['reader', 'writer', 'manager', 'admin'] as const;
export const ACTIONS = ['list', 'read', 'write', 'manage', 'deny'] as const;

function hours(n: number): string {
  if (Number.isInteger(n)) return String(n);
  return n < 10 ? n.toFixed(2) : n.toFixed(1);
}

interface QuotaRow {
  key: keyof Omit<Limits, 'period'>;
  label: string;
  used: number;
  limit: number | null;
  fmt: (n: number) => string;
}

function rowsOf(q: QuotaInfo): QuotaRow[] {
  return [
    { key: 'cpu_hours', label: 'CPU hours', used: q.usage.cpu_hours, limit: q.limits.cpu_hours, fmt: hours },
    { key: 'gpu_hours', label: 'GPU hours', used: q.usage.gpu_hours, limit: q.limits.gpu_hours, fmt: hours },
    {
      key: 'max_running_jobs',
      label: 'Running jobs',
      used: q.usage.running_jobs,
      limit: q.limits.max_running_jobs,
      fmt: (n) => String(Math.round(n)),
    },
    { key: 'storage_bytes', label: 'Storage', used: q.usage.storage_bytes, limit: q.limits.storage_bytes, fmt: bytes },
  ];
}

// One labelled bar per quota: "used / limit" (or "unlimited"); the hours count over the period.
export function QuotaBars({ quota, subject }: { quota: QuotaInfo; subject: string }) {
  return (
    <div class="quota-bars">
      {rowsOf(quota).map((r) => {
        const label = `${r.label} of ${subject}`;
        const over = r.limit !== null && r.used >= r.limit && r.limit > 0;
        return (
          <div class="quota-row" key={r.key}>
            <div class="quota-label">
              <span>{r.label}</span>
              <span class={over ? 'quota-numbers quota-over' : 'quota-numbers'}>
                {r.fmt(r.used)} / {r.limit === null ? 'unlimited' : r.fmt(r.limit)}
              </span>
            </div>
            {r.limit === null ? (
              <div class="progress progress-unlimited" aria-hidden="true" />
            ) : (
              <Progress value={r.used} max={r.limit} label={label} />
            )}
          </div>
        );
      })}
      <p class="hint">CPU and GPU hours count over the last {quota.limits.period}; running jobs and storage are current levels.</p>
    </div>
  );
}

// Limits are edited as text: empty = unlimited; storage accepts sizes like "100GiB".
function limitText(v: number | null, storage = false): string {
  if (v === null || v === undefined) return '';
  if (storage) {
    for (const [u, f] of [
      ['TiB', 1024 ** 4],
      ['GiB', 1024 ** 3],
      ['MiB', 1024 ** 2],
    ] as const)
      if (v >= f && v % f === 0) return `${v / f}${u}`;
  }
  return String(v);
}

function parseNumber(label: string, text: string, integer: boolean): number | null {
  const t = text.trim();
  if (t === '') return null;
  const n = Number(t);
  if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n)))
    throw new Error(`${label} must be ${integer ? 'a whole number' : 'a number'} of 0 or more, or empty for unlimited`);
  return n;
}

// Sets a user's or project's limits with PUT /api/v1/admin/quotas/{users|projects}/{name}.
export function QuotaDialog({
  kind,
  name,
  open,
  onClose,
  onSaved,
}: {
  kind: 'users' | 'projects';
  name: string;
  open: boolean;
  onClose: () => void;
  onSaved: (q: QuotaInfo) => void;
}) {
  const [form, setForm] = useState({ cpu: '', gpu: '', jobs: '', storage: '', period: '30d' });
  const [loaded, setLoaded] = useState<Error | null | 'loading'>('loading');
  const path = `/api/v1/admin/quotas/${kind}/${encodeURIComponent(name)}`;
  useEffect(() => {
    if (!open) return;
    setLoaded('loading');
    api
      .get<QuotaInfo>(path)
      .then((q) => {
        setForm({
          cpu: limitText(q.limits.cpu_hours),
          gpu: limitText(q.limits.gpu_hours),
          jobs: limitText(q.limits.max_running_jobs),
          storage: limitText(q.limits.storage_bytes, true),
          period: q.limits.period,
        });
        setLoaded(null);
      })
      .catch((e) => setLoaded(e));
  }, [open, path]);
  const save = useAction(async () => {
    const storage = form.storage.trim();
    const body = {
      cpu_hours: parseNumber('CPU hours', form.cpu, false),
      gpu_hours: parseNumber('GPU hours', form.gpu, false),
      max_running_jobs: parseNumber('Running jobs', form.jobs, true),
      storage_bytes: storage === '' ? null : /^\d+$/.test(storage) ? Number(storage) : storage,
      period: form.period.trim() || '30d',
    };
    onSaved(await api.put<QuotaInfo>(path, body));
  });
  const reset = useAction(async () => {
    await api.del(path);
    onSaved(await api.get<QuotaInfo>(path));
  });
  const set = (k: keyof typeof form) => (e: Event) => setForm({ ...form, [k]: (e.target as HTMLInputElement).value });
  return (
    <Dialog title={`Quota of ${name}`} open={open} onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void save.run();
        }}
      >
        <ErrorBanner error={loaded instanceof Error ? loaded : save.error || reset.error} />
        <p class="hint">Leave a field empty for no limit.</p>
        <div class="form-grid">
          <Field label="CPU hours">
            {(id) => <input id={id} inputMode="decimal" value={form.cpu} onInput={set('cpu')} />}
          </Field>
          <Field label="GPU hours">
            {(id) => <input id={id} inputMode="decimal" value={form.gpu} onInput={set('gpu')} />}
          </Field>
          <Field label="Running jobs">
            {(id) => <input id={id} inputMode="numeric" value={form.jobs} onInput={set('jobs')} />}
          </Field>
          <Field label="Storage" hint='Bytes or a size such as "100GiB"'>
            {(id, d) => <input id={id} aria-describedby={d} value={form.storage} onInput={set('storage')} />}
          </Field>
          <Field label="Period" hint='The window the hours count over, e.g. "30d"'>
            {(id, d) => <input id={id} aria-describedby={d} value={form.period} onInput={set('period')} />}
          </Field>
        </div>
        <div class="dialog-actions">
          <Button kind="link" onClick={() => void reset.run()} busy={reset.busy}>
            Reset to defaults
          </Button>
          <span class="spacer" />
          <Button onClick={onClose}>Cancel</Button>
          <Button kind="primary" type="submit" busy={save.busy} disabled={loaded !== null}>
            Save quota
          </Button>
        </div>
      </form>
    </Dialog>
  );
}

// A secret shown once (a new token): read-only, selected on focus, with a copy button.
export function SecretOnce({ label, value }: { label: string; value: string }) {
  const [copied, setCopied] = useState('');
  const ref = useRef<HTMLInputElement>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setCopied('Copied to the clipboard.');
    } catch {
      ref.current?.select();
      setCopied('Select and copy it by hand (Ctrl+C): the clipboard is not available here.');
    }
  };
  return (
    <div class="secret-once">
      <Field label={label} hint="Shown only this once: copy it now and keep it somewhere safe.">
        {(id, d) => (
          <div class="row">
            <input
              id={id}
              ref={ref}
              class="mono secret-value"
              readOnly
              value={value}
              aria-describedby={d}
              onFocus={(e) => (e.target as HTMLInputElement).select()}
            />
            <Button onClick={() => void copy()}>Copy</Button>
          </div>
        )}
      </Field>
      <p class="hint" role="status" aria-live="polite">
        {copied}
      </p>
    </div>
  );
}

// Remembers which element opened a dialog and puts focus back there when it closes,
// even when the page re-rendered in between (the native dialog only restores focus to
// an element that is still in the document).
export function useReturnFocus() {
  const opener = useRef<HTMLElement | null>(null);
  return {
    remember: () => {
      opener.current = document.activeElement as HTMLElement | null;
    },
    restore: () => {
      const el = opener.current;
      setTimeout(() => {
        if (el && el.isConnected) el.focus();
        else document.getElementById('main')?.focus();
      }, 0);
    },
  };
}

// A polite live region: async results (saved, added, removed) are announced.
export function LiveStatus({ message }: { message: string }) {
  return (
    <p class="live-status" role="status" aria-live="polite">
      {message}
    </p>
  );
}
