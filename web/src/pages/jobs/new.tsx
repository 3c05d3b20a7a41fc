// Run a job: the form behind POST /api/v1/jobs (modules/jobs/README.md "Submit"), with what
// `neuro run` offers most: preset, image, command, name, env (values or secrets), volumes
// (storage paths or secrets), HTTP port, life span, project, tags.
import { useEffect, useId, useMemo, useState } from 'preact/hooks';
import { Button, ErrorBanner, Field, PageHeader, Select } from '../../components/ui';
import { api, query } from '../../lib/api';
import { useAction, useAsync, useTitle } from '../../lib/hooks';
import { getClusterConfig, type Job, type Preset, presetLabel } from '../../lib/jobs';
import { Link, navigate } from '../../lib/router';
import { useSession } from '../../lib/session';

interface EnvRow {
  key: string;
  kind: 'value' | 'secret';
  value: string;
}
interface VolRow {
  kind: 'storage' | 'secret';
  src: string;
  dst: string;
  readOnly: boolean;
}
interface Secret {
  key: string;
  project_name: string;
  uri: string;
}

const LAST = 'neurod.jobs.last';
const NAME_RE = /^[a-z](?:-?[a-z0-9])*$/;
const ENV_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

function lastUsed(): { preset?: string; image?: string; project?: string } {
  try {
    return JSON.parse(localStorage.getItem(LAST) || '{}');
  } catch {
    return {};
  }
}

// "90m", "8h", "1d", "1d12h" → minutes (rounded up); a unit is required, as for neuro run.
export function parseLifeSpan(s: string): number | null {
  const t = s.trim().replace(/\s+/g, '');
  if (!t) return null;
  const re = /(\d+(?:\.\d+)?)(d|h|m|s)/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let pos = 0;
  while ((m = re.exec(t))) {
    const n = parseFloat(m[1]);
    total += m[2] === 'd' ? n * 1440 : m[2] === 'h' ? n * 60 : m[2] === 'm' ? n : n / 60;
    pos = re.lastIndex;
  }
  if (pos !== t.length || total <= 0) return NaN;
  return Math.ceil(total);
}

// The secrets a row can use, as `secret:KEY` references.
function secretOptions(secrets: string[]) {
  return [
    { value: '', label: secrets.length ? 'Pick a secret' : 'No secrets in this project' },
    ...secrets.map((k) => ({ value: `secret:${k}`, label: k })),
  ];
}

function absPath(p: string): boolean {
  return p.startsWith('/') && p !== '/' && !p.split('/').includes('..');
}

export function NewJobPage(_props: { params: Record<string, string> }) {
  useTitle('Run a job');
  const { me } = useSession();
  const last = useMemo(lastUsed, []);
  const projects = me.projects.map((p) => p.name);
  const defaultProject =
    (last.project && projects.includes(last.project) && last.project) || (projects.includes(me.name) ? me.name : projects[0] || me.name);

  const config = useAsync((signal) => getClusterConfig(signal), []);
  const modules = config.data?.modules;
  const [project, setProject] = useState(defaultProject);
  const [preset, setPreset] = useState(last.preset ?? '');
  const [image, setImage] = useState(last.image ?? '');
  const [command, setCommand] = useState('');
  const [name, setName] = useState('');
  const [env, setEnv] = useState<EnvRow[]>([]);
  const [vols, setVols] = useState<VolRow[]>([]);
  const [httpPort, setHttpPort] = useState('');
  const [httpAuth, setHttpAuth] = useState(true);
  const [lifeSpan, setLifeSpan] = useState('');
  const [tags, setTags] = useState('');
  const [description, setDescription] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [tried, setTried] = useState(false);

  const secrets = useAsync(
    (signal) =>
      modules?.includes('secrets')
        ? api.get<Secret[]>(`/api/v1/secrets${query({ project_name: project })}`, { signal }).catch(() => [] as Secret[])
        : Promise.resolve([] as Secret[]),
    [project, modules?.includes('secrets')],
  );
  // The registry's repositories the user may pull, for the image's suggestions (best effort).
  const images = useAsync(
    (signal) =>
      modules?.includes('registry')
        ? api
            .get<{ repositories?: string[] }>('/v2/_catalog?n=200', { signal })
            .then((r) => r.repositories ?? [])
            .catch(() => [] as string[])
        : Promise.resolve([] as string[]),
    [modules?.includes('registry')],
  );

  // The preset: the last used one when the cluster still has it, else the first.
  useEffect(() => {
    const ps = config.data?.presets;
    if (ps && ps.length && !ps.some((p) => p.name === preset)) setPreset(ps[0].name);
  }, [config.data]);

  const imageOptions = useMemo(() => {
    const out: string[] = [];
    for (const r of images.data ?? []) {
      const [p, ...rest] = r.split('/');
      out.push(p === project ? `image:${rest.join('/')}` : `image:/${r}`);
    }
    return out;
  }, [images.data, project]);

  const submit = useAction(async (body: Record<string, unknown>) => {
    const job = await api.post<Job>('/api/v1/jobs', body);
    try {
      localStorage.setItem(LAST, JSON.stringify({ preset, image, project }));
    } catch {
      /* private mode: nothing to remember */
    }
    navigate(`/jobs/${encodeURIComponent(job.id)}`);
  });

  function build(): Record<string, unknown> | null {
    const e: Record<string, string> = {};
    const body: Record<string, unknown> = { project_name: project };
    if (preset) body.preset_name = preset;
    if (!image.trim()) e.image = 'Give an image: image:NAME[:TAG] from the cluster registry, or an engine reference like busybox:1.';
    else if (/\s/.test(image.trim())) e.image = 'An image reference has no spaces.';
    else body.image = image.trim();
    if (command.trim()) body.command = command.trim(); // the server splits it like a shell
    const n = name.trim();
    if (n) {
      if (n.length < 3 || n.length > 40) e.name = 'A name has 3 to 40 characters.';
      else if (!NAME_RE.test(n)) e.name = 'Lower-case letters, digits and single hyphens, starting with a letter.';
      else if (n.startsWith('job-')) e.name = 'Names starting with "job-" are kept for job ids.';
      else body.name = n;
    }
    const plain: Record<string, string> = {};
    const secretEnv: Record<string, string> = {};
    env.forEach((r, i) => {
      const k = r.key.trim();
      if (!k && !r.value) return;
      if (!ENV_RE.test(k)) e[`env${i}`] = 'A variable name has letters, digits and _, not starting with a digit.';
      else if (k in plain || k in secretEnv) e[`env${i}`] = `${k} is set twice.`;
      else if (r.kind === 'secret') {
        if (!r.value) e[`env${i}`] = 'Pick a secret.';
        else secretEnv[k] = r.value;
      } else if (r.value.startsWith('secret:')) secretEnv[k] = r.value;
      else plain[k] = r.value;
    });
    if (Object.keys(plain).length) body.env = plain;
    if (Object.keys(secretEnv).length) body.secret_env = secretEnv;
    const volumes: unknown[] = [];
    const secretVolumes: unknown[] = [];
    const targets = new Set<string>();
    vols.forEach((v, i) => {
      const src = v.src.trim();
      const dst = v.dst.trim();
      if (!src && !dst) return;
      if (!src) e[`vol${i}`] = v.kind === 'secret' ? 'Pick a secret.' : 'Give a storage path, e.g. storage:data.';
      else if (!absPath(dst)) e[`vol${i}`] = 'The mount path is absolute (/data), not /, without "..".';
      else if (targets.has(dst)) e[`vol${i}`] = `${dst} is mounted twice.`;
      else {
        targets.add(dst);
        if (v.kind === 'secret') secretVolumes.push({ src_secret_uri: src.startsWith('secret:') ? src : `secret:${src}`, dst_path: dst });
        else
          volumes.push({
            src_storage_uri: src.startsWith('storage:') ? src : `storage:${src.replace(/^\/+/, '')}`,
            dst_path: dst,
            read_only: v.readOnly,
          });
      }
    });
    if (volumes.length) body.volumes = volumes;
    if (secretVolumes.length) body.secret_volumes = secretVolumes;
    if (httpPort.trim()) {
      const p = Number(httpPort);
      if (!Number.isInteger(p) || p < 1 || p > 65535) e.http = 'A port is a number from 1 to 65535.';
      else body.http = { port: p, requires_auth: httpAuth };
    }
    const ls = parseLifeSpan(lifeSpan);
    if (ls !== null) {
      if (Number.isNaN(ls)) e.lifeSpan = 'A duration with a unit: 90m, 8h, 1d, 1d12h.';
      else body.max_run_time_minutes = ls;
    }
    const tagList = tags.split(/[\s,]+/).filter(Boolean);
    if (tagList.length > 16) e.tags = 'At most 16 tags.';
    else if (tagList.some((t) => t.length > 256)) e.tags = 'A tag has at most 256 characters.';
    else if (tagList.length) body.tags = tagList;
    if (description.trim()) body.description = description.trim();
    setErrors(e);
    return Object.keys(e).length ? null : body;
  }

  // After a first attempt, messages follow the fields as they are corrected.
  useEffect(() => {
    if (tried) build();
  }, [tried, image, name, env, vols, httpPort, lifeSpan, tags]);

  const onSubmit = (ev: Event) => {
    ev.preventDefault();
    setTried(true);
    const body = build();
    if (!body) {
      // Focus the first control with a problem.
      requestAnimationFrame(() => (document.querySelector('[aria-invalid="true"]') as HTMLElement | null)?.focus());
      return;
    }
    void submit.run(body);
  };

  const err = (k: string) => (errors[k] ? <span class="field-error">{errors[k]}</span> : undefined);
  const presetList: Preset[] = config.data?.presets ?? [];
  const current = presetList.find((p) => p.name === preset);
  const secretKeys = (secrets.data ?? []).filter((s) => s.project_name === project).map((s) => s.key);
  const errorCount = Object.keys(errors).length;

  return (
    <>
      <PageHeader title="Run a job">
        <Link href="/jobs" class="btn">
          Back to jobs
        </Link>
      </PageHeader>
      <form class="card job-form" onSubmit={onSubmit} noValidate aria-label="Run a job">
        <ErrorBanner error={config.error} />
        {errorCount > 0 && (
          <div class="banner banner-error" role="alert">
            <span class="banner-text">
              {errorCount === 1 ? 'One field needs attention' : `${errorCount} fields need attention`}: see the messages below.
            </span>
          </div>
        )}
        <div class="form-grid">
          <Field label="Project" hint="Whose quota and storage the job uses.">
            {(id, d) => (
              <Select
                id={id}
                aria-describedby={d}
                value={project}
                options={projects.includes(project) ? projects : [...projects, project]}
                onValue={setProject}
              />
            )}
          </Field>
          <Field label="Preset" hint={current ? `${current.cpu} CPU, ${current.memory_mb} MiB memory${current.gpu ? `, ${current.gpu} GPU` : ''}` : 'The resources the job gets.'}>
            {(id, d) => (
              <select
                id={id}
                aria-describedby={d}
                value={preset}
                disabled={!presetList.length}
                onChange={(e) => setPreset((e.target as HTMLSelectElement).value)}
              >
                {!presetList.length && <option value="">{config.loading ? 'Loading presets…' : 'No presets configured'}</option>}
                {presetList.map((p) => (
                  <option key={p.name} value={p.name}>
                    {presetLabel(p)}
                  </option>
                ))}
              </select>
            )}
          </Field>
        </div>
        <div class="form-grid">
          <Field label="Image" hint={err('image') ?? 'image:NAME[:TAG] from this cluster\u2019s registry, or an engine reference (busybox:1).'}>
            {(id, d) => (
              <>
                <input
                  id={id}
                  aria-describedby={d}
                  aria-invalid={errors.image ? 'true' : undefined}
                  list={`${id}-images`}
                  value={image}
                  required
                  autocomplete="off"
                  spellcheck={false}
                  placeholder="image:trainer:3"
                  onInput={(e) => setImage((e.target as HTMLInputElement).value)}
                />
                <datalist id={`${id}-images`}>
                  {imageOptions.map((o) => (
                    <option key={o} value={o} />
                  ))}
                </datalist>
              </>
            )}
          </Field>
          <Field label="Name" hint={err('name') ?? 'Optional: lower-case letters, digits and -, 3 to 40.'}>
            {(id, d) => (
              <input
                id={id}
                aria-describedby={d}
                aria-invalid={errors.name ? 'true' : undefined}
                value={name}
                autocomplete="off"
                spellcheck={false}
                placeholder="train-1"
                onInput={(e) => setName((e.target as HTMLInputElement).value)}
              />
            )}
          </Field>
        </div>
        <Field label="Command" hint="Optional (the image's default otherwise). Split like a shell: quote words with spaces, e.g. sh -c 'echo $HOME'.">
          {(id, d) => (
            <input
              id={id}
              aria-describedby={d}
              class="mono"
              value={command}
              autocomplete="off"
              spellcheck={false}
              placeholder="python train.py --epochs 3"
              onInput={(e) => setCommand((e.target as HTMLInputElement).value)}
            />
          )}
        </Field>

        <EnvEditor rows={env} setRows={setEnv} secrets={secretKeys} errors={errors} />
        <VolumeEditor rows={vols} setRows={setVols} secrets={secretKeys} errors={errors} project={project} />

        <div class="form-grid">
          <Field label="HTTP port" hint={err('http') ?? 'Optional: a port the job serves HTTP on, opened from its page.'}>
            {(id, d) => (
              <input
                id={id}
                aria-describedby={d}
                aria-invalid={errors.http ? 'true' : undefined}
                inputMode="numeric"
                value={httpPort}
                placeholder="8888"
                onInput={(e) => setHttpPort((e.target as HTMLInputElement).value)}
              />
            )}
          </Field>
          <div class="field checkbox-field">
            <label>
              <input type="checkbox" checked={httpAuth} onChange={(e) => setHttpAuth((e.target as HTMLInputElement).checked)} /> Require
              authentication for the HTTP port
            </label>
            <small class="hint">Off: anyone who can reach neurod can open it.</small>
          </div>
          <Field label="Life span" hint={err('lifeSpan') ?? 'Optional: 90m, 8h, 1d. The job is cancelled after running that long.'}>
            {(id, d) => (
              <input
                id={id}
                aria-describedby={d}
                aria-invalid={errors.lifeSpan ? 'true' : undefined}
                value={lifeSpan}
                placeholder="1d"
                onInput={(e) => setLifeSpan((e.target as HTMLInputElement).value)}
              />
            )}
          </Field>
          <Field label="Tags" hint={err('tags') ?? 'Optional, separated by spaces or commas: exp=3 baseline.'}>
            {(id, d) => (
              <input
                id={id}
                aria-describedby={d}
                aria-invalid={errors.tags ? 'true' : undefined}
                value={tags}
                spellcheck={false}
                onInput={(e) => setTags((e.target as HTMLInputElement).value)}
              />
            )}
          </Field>
        </div>
        <Field label="Description">
          {(id) => <input id={id} value={description} onInput={(e) => setDescription((e.target as HTMLInputElement).value)} />}
        </Field>

        <ErrorBanner error={submit.error} onDismiss={() => submit.setError(null)} />
        <div class="row">
          <Button type="submit" kind="primary" busy={submit.busy}>
            {submit.busy ? 'Submitting…' : 'Run the job'}
          </Button>
          <Link href="/jobs" class="btn">
            Cancel
          </Link>
        </div>
      </form>
    </>
  );
}

function EnvEditor({
  rows,
  setRows,
  secrets,
  errors,
}: {
  rows: EnvRow[];
  setRows: (f: (r: EnvRow[]) => EnvRow[]) => void;
  secrets: string[];
  errors: Record<string, string>;
}) {
  const base = useId();
  const set = (i: number, patch: Partial<EnvRow>) => setRows((rs) => rs.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  return (
    <fieldset>
      <legend>Environment variables</legend>
      {rows.length === 0 && <p class="hint">None. A value can come from a secret of the project.</p>}
      {rows.map((r, i) => (
        <div class="edit-row" key={i}>
          <div class="field">
            <label for={`${base}-k${i}`}>Variable {i + 1} name</label>
            <input
              id={`${base}-k${i}`}
              class="mono"
              value={r.key}
              aria-invalid={errors[`env${i}`] ? 'true' : undefined}
              aria-describedby={errors[`env${i}`] ? `${base}-e${i}` : undefined}
              spellcheck={false}
              placeholder="LR"
              onInput={(e) => set(i, { key: (e.target as HTMLInputElement).value })}
            />
          </div>
          <div class="field">
            <label for={`${base}-t${i}`}>Variable {i + 1} from</label>
            <select id={`${base}-t${i}`} value={r.kind} onChange={(e) => set(i, { kind: (e.target as HTMLSelectElement).value as EnvRow['kind'], value: '' })}>
              <option value="value">a value</option>
              <option value="secret">a secret</option>
            </select>
          </div>
          <div class="field grow">
            <label for={`${base}-v${i}`}>Variable {i + 1} {r.kind === 'secret' ? 'secret' : 'value'}</label>
            {r.kind === 'secret' ? (
              <Select id={`${base}-v${i}`} value={r.value} options={secretOptions(secrets)} onValue={(v) => set(i, { value: v })} />
            ) : (
              <input
                id={`${base}-v${i}`}
                class="mono"
                value={r.value}
                spellcheck={false}
                onInput={(e) => set(i, { value: (e.target as HTMLInputElement).value })}
              />
            )}
          </div>
          <button type="button" class="btn btn-small btn-danger" aria-label={`Remove variable ${i + 1}`} onClick={() => setRows((rs) => rs.filter((_, j) => j !== i))}>
            Remove
          </button>
          {errors[`env${i}`] && (
            <small id={`${base}-e${i}`} class="field-error edit-row-error">
              {errors[`env${i}`]}
            </small>
          )}
        </div>
      ))}
      <button type="button" class="btn btn-small" onClick={() => setRows((rs) => [...rs, { key: '', kind: 'value', value: '' }])}>
        Add a variable
      </button>
    </fieldset>
  );
}

function VolumeEditor({
  rows,
  setRows,
  secrets,
  errors,
  project,
}: {
  rows: VolRow[];
  setRows: (f: (r: VolRow[]) => VolRow[]) => void;
  secrets: string[];
  errors: Record<string, string>;
  project: string;
}) {
  const base = useId();
  const set = (i: number, patch: Partial<VolRow>) => setRows((rs) => rs.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  return (
    <fieldset>
      <legend>Volumes</legend>
      {rows.length === 0 && (
        <p class="hint">
          None. Mount a folder of the project's storage (storage:PATH, relative to storage://…/{project}) or a secret as a
          read-only file.
        </p>
      )}
      {rows.map((r, i) => (
        <div class="edit-row" key={i}>
          <div class="field">
            <label for={`${base}-t${i}`}>Volume {i + 1} kind</label>
            <select
              id={`${base}-t${i}`}
              value={r.kind}
              onChange={(e) => set(i, { kind: (e.target as HTMLSelectElement).value as VolRow['kind'], src: '' })}
            >
              <option value="storage">storage folder</option>
              <option value="secret">secret file</option>
            </select>
          </div>
          <div class="field grow">
            <label for={`${base}-s${i}`}>Volume {i + 1} source</label>
            {r.kind === 'secret' ? (
              <Select id={`${base}-s${i}`} value={r.src} options={secretOptions(secrets)} onValue={(v) => set(i, { src: v })} />
            ) : (
              <input
                id={`${base}-s${i}`}
                class="mono"
                value={r.src}
                placeholder="storage:data"
                spellcheck={false}
                onInput={(e) => set(i, { src: (e.target as HTMLInputElement).value })}
              />
            )}
          </div>
          <div class="field grow">
            <label for={`${base}-d${i}`}>Volume {i + 1} mount path</label>
            <input
              id={`${base}-d${i}`}
              class="mono"
              value={r.dst}
              placeholder={r.kind === 'secret' ? '/etc/key' : '/data'}
              spellcheck={false}
              aria-invalid={errors[`vol${i}`] ? 'true' : undefined}
              aria-describedby={errors[`vol${i}`] ? `${base}-e${i}` : undefined}
              onInput={(e) => set(i, { dst: (e.target as HTMLInputElement).value })}
            />
          </div>
          <label class="inline-check">
            <input
              type="checkbox"
              checked={r.kind === 'secret' || r.readOnly}
              disabled={r.kind === 'secret'}
              onChange={(e) => set(i, { readOnly: (e.target as HTMLInputElement).checked })}
            />{' '}
            Read-only
          </label>
          <button type="button" class="btn btn-small btn-danger" aria-label={`Remove volume ${i + 1}`} onClick={() => setRows((rs) => rs.filter((_, j) => j !== i))}>
            Remove
          </button>
          {errors[`vol${i}`] && (
            <small id={`${base}-e${i}`} class="field-error edit-row-error">
              {errors[`vol${i}`]}
            </small>
          )}
        </div>
      ))}
      <button type="button" class="btn btn-small" onClick={() => setRows((rs) => [...rs, { kind: 'storage', src: '', dst: '', readOnly: true }])}>
        Add a volume
      </button>
    </fieldset>
  );
}
