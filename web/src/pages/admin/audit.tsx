// The audit log: every mutating request, newest first, filtered by who, what resource and
// when (GET /api/v1/audit). The filters live in the URL, so a filtered view is a link.
import { useEffect, useState } from 'preact/hooks';
import { api, query } from '../../lib/api';
import { dateTime } from '../../lib/format';
import { useAction, useAsync, useTitle } from '../../lib/hooks';
import { navigate, useLocation } from '../../lib/router';
import { Button, EmptyState, ErrorBanner, Field, Loading, PageHeader } from '../../components/ui';
import { LiveStatus } from '../../components/org';

interface AuditEntry {
  id: number;
  at: number;
  principal: string;
  method: string;
  path: string;
  route: string;
  resource: string;
  status: number;
  remote: string;
  request_id: string;
}

interface AuditPage {
  entries: AuditEntry[];
  next: number | null;
}

const FILTERS = ['user', 'resource', 'since', 'until', 'limit'] as const;
type Filters = Record<(typeof FILTERS)[number], string>;

// <input type="datetime-local"> gives local wall time without a zone; the API takes epoch ms.
function toEpoch(local: string): string {
  if (!local) return '';
  const t = new Date(local).getTime();
  return Number.isNaN(t) ? local : String(t);
}

function filtersOf(search: URLSearchParams): Filters {
  return Object.fromEntries(FILTERS.map((k) => [k, search.get(k) ?? ''])) as Filters;
}

function statusClass(s: number): string {
  if (s >= 500) return 'badge badge-failed';
  if (s >= 400) return 'badge badge-pending';
  return 'badge badge-running';
}

export function AuditPage(_props: { params: Record<string, string> }) {
  useTitle('Audit log');
  const { search } = useLocation();
  const applied = filtersOf(search);
  const key = FILTERS.map((k) => applied[k]).join('\u0000');
  const [form, setForm] = useState<Filters>(applied);
  useEffect(() => setForm(filtersOf(new URLSearchParams(location.search))), [key]);

  const apiQuery = (before?: number) =>
    '/api/v1/audit' +
    query({
      user: applied.user.trim(),
      resource: applied.resource.trim(),
      since: toEpoch(applied.since),
      until: toEpoch(applied.until),
      limit: applied.limit || 50,
      before,
    });
  const first = useAsync((signal) => api.get<AuditPage>(apiQuery(), { signal }), [key]);
  const [more, setMore] = useState<{ entries: AuditEntry[]; next: number | null } | null>(null);
  useEffect(() => setMore(null), [key, first.data]);
  const loadMore = useAction(async () => {
    const next = more ? more.next : first.data?.next;
    if (!next) return;
    const page = await api.get<AuditPage>(apiQuery(next));
    setMore((old) => ({ entries: [...(old?.entries ?? []), ...page.entries], next: page.next }));
  });

  const entries = [...(first.data?.entries ?? []), ...(more?.entries ?? [])];
  const next = more ? more.next : first.data?.next;
  const filtered = FILTERS.some((k) => k !== 'limit' && applied[k]);

  const apply = (e: Event) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const k of FILTERS) if (form[k].trim()) q.set(k, form[k].trim());
    const s = q.toString();
    navigate(location.pathname + (s ? `?${s}` : ''), true);
  };
  const set = (k: keyof Filters) => (e: Event) => setForm({ ...form, [k]: (e.target as HTMLInputElement).value });

  return (
    <>
      <PageHeader title="Audit log">
        <Button onClick={first.reload} busy={first.loading}>
          Refresh
        </Button>
      </PageHeader>
      <form class="card audit-filters" aria-label="Filter the audit log" onSubmit={apply}>
        <div class="form-grid">
          <Field label="User" hint="Who made the request (exact name)">
            {(id, d) => <input id={id} aria-describedby={d} value={form.user} onInput={set('user')} autoComplete="off" />}
          </Field>
          <Field label="Resource" hint="A URI (job://…, storage:data) or an API path; matches what is below it">
            {(id, d) => <input id={id} aria-describedby={d} value={form.resource} onInput={set('resource')} autoComplete="off" />}
          </Field>
          <Field label="From">
            {(id) => <input id={id} type="datetime-local" step={1} value={form.since} onInput={set('since')} />}
          </Field>
          <Field label="Until">
            {(id) => <input id={id} type="datetime-local" step={1} value={form.until} onInput={set('until')} />}
          </Field>
          <Field label="Per page">
            {(id) => (
              <select id={id} value={form.limit || '50'} onChange={set('limit')}>
                {[...new Set(['20', '50', '100', '200', '500', form.limit || '50'])].sort((a, b) => Number(a) - Number(b)).map((n) => (
                  <option key={n} value={n}>
                    {n}
                  </option>
                ))}
              </select>
            )}
          </Field>
        </div>
        <div class="row">
          <Button kind="primary" type="submit">
            Apply filters
          </Button>
          {filtered && (
            <Button kind="link" onClick={() => navigate(location.pathname, true)}>
              Clear filters
            </Button>
          )}
          <span class="hint">Every POST, PUT, PATCH and DELETE is recorded, whatever its result. Times are in your time zone.</span>
        </div>
      </form>

      <ErrorBanner error={first.error} />
      <LiveStatus
        message={first.loading ? '' : first.data ? `${entries.length} ${entries.length === 1 ? 'entry' : 'entries'} shown${next ? ', more available' : ''}.` : ''}
      />
      {first.loading && !first.data ? (
        <Loading label="Loading the audit log…" />
      ) : entries.length === 0 && !first.error ? (
        <EmptyState title={filtered ? 'No entries match these filters' : 'The audit log is empty'}>
          {filtered ? 'Widen the time range or clear a filter.' : 'Changes (creating users, running jobs, sharing) appear here as they happen.'}
        </EmptyState>
      ) : (
        entries.length > 0 && (
          <div class="table-wrap">
            <table class="audit-table">
              <caption class="visually-hidden">Audit entries, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Who</th>
                  <th scope="col">What</th>
                  <th scope="col">Resource</th>
                  <th scope="col">Result</th>
                  <th scope="col" class="hide-narrow">
                    From
                  </th>
                  <th scope="col" class="hide-narrow">
                    Request id
                  </th>
                </tr>
              </thead>
              <tbody>
                {entries.map((e) => (
                  <tr key={e.id}>
                    <td class="audit-time">{dateTime(e.at)}</td>
                    <td>{e.principal || <span class="muted">anonymous</span>}</td>
                    <td>
                      <span class="mono">
                        <strong>{e.method}</strong> {e.path}
                      </span>
                    </td>
                    <td class="mono break">{e.resource || <span class="muted">—</span>}</td>
                    <td>
                      <span class={statusClass(e.status)}>{e.status}</span>
                    </td>
                    <td class="hide-narrow mono small">{e.remote}</td>
                    <td class="hide-narrow mono small">{e.request_id}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )
      )}
      <ErrorBanner error={loadMore.error} />
      {next && entries.length > 0 && (
        <div class="row load-more">
          <Button onClick={() => void loadMore.run()} busy={loadMore.busy}>
            Load more
          </Button>
        </div>
      )}
    </>
  );
}
