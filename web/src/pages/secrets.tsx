// Secrets: names only, never values (the page never asks for one). API
// (modules/secrets/README.md):
//   list    GET    /api/v1/secrets (every project the caller may read; key, project, owner, dates)
//   add     POST   /api/v1/secrets {key, value (base64), project_name}
//   delete  DELETE /api/v1/secrets/{key}?project_name=
//   share   ShareDialog on the secret's uri (secret://CLUSTER/PROJECT/KEY; `read` lets a job use it)
import { useState } from 'preact/hooks';
import { api, query } from '../lib/api';
import { useAction, useAsync, useTitle } from '../lib/hooks';
import { useSession } from '../lib/session';
import { ago, bytes, dateTime } from '../lib/format';
import { Button, Dialog, EmptyState, ErrorBanner, Field, Loading, Notice, PageHeader, Select } from '../components/ui';
import { base64, CopyText } from '../components/data';
import { ConfirmDialog } from '../components/ui';
import { ShareDialog } from '../components/share';

interface Secret {
  key: string;
  owner: string;
  project_name: string;
  uri: string;
  created_at: string;
  updated_at: string;
}

const KEY_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,254}$/;
const MAX_VALUE = 1 << 20;

export function SecretsPage(_props: { params: Record<string, string> }) {
  useTitle('Secrets');
  const { me } = useSession();
  const [project, setProject] = useState('');
  const [adding, setAdding] = useState(false);
  const [toDelete, setToDelete] = useState<Secret | null>(null);
  const [toShare, setToShare] = useState<Secret | null>(null);
  const [saved, setSaved] = useState('');
  const secrets = useAsync((signal) => api.get<Secret[]>('/api/v1/secrets', { signal }), []);

  const all = secrets.data ?? [];
  const projects = [...new Set([me.name, ...me.projects.map((p) => p.name), ...all.map((s) => s.project_name)])].sort();
  const writable = me.admin
    ? projects
    : [...new Set([me.name, ...me.projects.filter((p) => p.role !== 'reader').map((p) => p.name)])].sort();
  const shown = all
    .filter((s) => !project || s.project_name === project)
    .sort((a, b) => a.project_name.localeCompare(b.project_name) || a.key.localeCompare(b.key));
  const ref = (s: Secret) => (s.project_name === me.name ? `secret:${s.key}` : `secret:/${s.project_name}/${s.key}`);

  return (
    <>
      <PageHeader title="Secrets">
        {projects.length > 1 && (
          <label class="inline-label">
            <span>Project</span>
            <Select value={project} options={[{ value: '', label: 'all projects' }, ...projects]} onValue={setProject} />
          </label>
        )}
        <Button kind="primary" onClick={() => (setSaved(''), setAdding(true))}>
          Add secret
        </Button>
      </PageHeader>
      <p class="muted small">
        Values are encrypted on the server and never shown here. A job reads one as an environment variable (
        <code>-e VAR=secret:KEY</code>) or a file (<code>-v secret:KEY:/path</code>).
      </p>
      {saved && <Notice kind="success">{saved}</Notice>}
      <ErrorBanner error={secrets.error} />
      {secrets.loading && !secrets.data ? (
        <Loading />
      ) : secrets.data && shown.length === 0 ? (
        <EmptyState title={project ? `No secrets in ${project}` : 'No secrets yet'}>
          <p>
            Keep API keys, passwords and credential files here instead of in images or job commands. Jobs use them as{' '}
            <code>-e VAR=secret:KEY</code> or <code>-v secret:KEY:/path</code>.
          </p>
          <Button kind="primary" onClick={() => (setSaved(''), setAdding(true))}>
            Add secret
          </Button>
        </EmptyState>
      ) : (
        secrets.data && (
          <div class="table-wrap">
            <table>
              <caption class="visually-hidden">Secrets (names only)</caption>
              <thead>
                <tr>
                  <th scope="col">Key</th>
                  <th scope="col">Project</th>
                  <th scope="col" class="hide-narrow">
                    Owner
                  </th>
                  <th scope="col" class="hide-narrow">
                    Updated
                  </th>
                  <th scope="col" class="hide-narrow">
                    In a job
                  </th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {shown.map((s) => (
                  <tr key={s.uri}>
                    <td>
                      <strong class="break">{s.key}</strong>
                    </td>
                    <td>{s.project_name}</td>
                    <td class="hide-narrow">{s.owner}</td>
                    <td class="nowrap hide-narrow" title={dateTime(s.updated_at)}>
                      {ago(s.updated_at)}
                    </td>
                    <td class="small hide-narrow">
                      <CopyText
                        text={`-e ${/^[A-Za-z_][A-Za-z0-9_]*$/.test(s.key) ? s.key : 'VAR'}=${ref(s)}`}
                        label={`how to use ${s.key} in a job`}
                      />
                    </td>
                    <td class="actions">
                      <button type="button" class="btn btn-small" aria-label={`Share ${s.key}`} onClick={() => setToShare(s)}>
                        Share
                      </button>
                      <button
                        type="button"
                        class="btn btn-small btn-danger"
                        aria-label={`Delete ${s.key}`}
                        onClick={() => setToDelete(s)}
                      >
                        Delete
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )
      )}

      <AddSecretDialog
        open={adding}
        projects={writable}
        initialProject={project && writable.includes(project) ? project : me.name}
        onClose={() => setAdding(false)}
        onSaved={(key, proj) => {
          setSaved(
            `Saved secret ${key} in project ${proj}. Use it in a job as -e VAR=${proj === me.name ? `secret:${key}` : `secret:/${proj}/${key}`}.`,
          );
          secrets.reload();
        }}
        exists={(key, proj) => all.some((s) => s.key === key && s.project_name === proj)}
      />

      <ConfirmDialog
        open={toDelete !== null}
        title="Delete secret"
        confirmLabel="Delete"
        onClose={() => setToDelete(null)}
        onConfirm={async () => {
          if (!toDelete) return;
          await api.del(`/api/v1/secrets/${encodeURIComponent(toDelete.key)}${query({ project_name: toDelete.project_name })}`);
          setSaved('');
          secrets.reload();
        }}
      >
        <p>
          Delete the secret <strong>{toDelete?.key}</strong> of project <strong>{toDelete?.project_name}</strong>? Jobs that
          use it can no longer start, and its value cannot be recovered.
        </p>
      </ConfirmDialog>

      {toShare && (
        <ShareDialog uri={toShare.uri} title={`secret ${toShare.key}`} open onClose={() => setToShare(null)} />
      )}
    </>
  );
}

function AddSecretDialog({
  open,
  projects,
  initialProject,
  onClose,
  onSaved,
  exists,
}: {
  open: boolean;
  projects: string[];
  initialProject: string;
  onClose: () => void;
  onSaved: (key: string, project: string) => void;
  exists: (key: string, project: string) => boolean;
}) {
  return (
    <Dialog title="Add secret" open={open} onClose={onClose}>
      {open && <AddSecretForm projects={projects} initialProject={initialProject} onClose={onClose} onSaved={onSaved} exists={exists} />}
    </Dialog>
  );
}

// The value lives only in this form's state while it is open: never rendered back as
// text, gone when the dialog closes.
function AddSecretForm({
  projects,
  initialProject,
  onClose,
  onSaved,
  exists,
}: {
  projects: string[];
  initialProject: string;
  onClose: () => void;
  onSaved: (key: string, project: string) => void;
  exists: (key: string, project: string) => boolean;
}) {
  const [key, setKey] = useState('');
  const [project, setProject] = useState(initialProject);
  const [value, setValue] = useState('');
  const [file, setFile] = useState<File | null>(null);
  const [show, setShow] = useState(false);
  const keyOk = key === '' || KEY_RE.test(key);

  const save = useAction(async () => {
    if (!KEY_RE.test(key))
      throw new Error('A key is a letter or _, then up to 254 letters, digits, _, . or - (use letters, digits and _ to name an environment variable).');
    let bytesOf: Uint8Array;
    if (file) {
      if (file.size > MAX_VALUE) throw new Error(`${file.name} is ${bytes(file.size)}; a secret holds at most 1 MiB.`);
      bytesOf = new Uint8Array(await file.arrayBuffer());
    } else {
      if (value === '') throw new Error('Type the value, or pick a file to read it from.');
      bytesOf = new TextEncoder().encode(value);
    }
    await api.post('/api/v1/secrets', { key, value: base64(bytesOf), project_name: project });
    setValue('');
    onSaved(key, project);
    onClose();
  });

  return (
    <form
      autoComplete="off"
      onSubmit={(e) => {
        e.preventDefault();
        void save.run();
      }}
    >
      <Field label="Key" hint="e.g. HF_TOKEN: a letter or _, then letters, digits, _, . or -. An existing key is replaced.">
        {(id, desc) => (
          <input
            id={id}
            aria-describedby={desc}
            aria-invalid={keyOk ? undefined : 'true'}
            value={key}
            required
            spellcheck={false}
            autoFocus
            onInput={(e) => setKey((e.target as HTMLInputElement).value.trim())}
          />
        )}
      </Field>
      {projects.length > 1 && (
        <Field label="Project">
          {(id) => (
            <Select id={id} value={project} options={projects} onValue={setProject} />
          )}
        </Field>
      )}
      <Field label="Value" hint={file ? `Taken from ${file.name} (${bytes(file.size)}).` : 'Never shown again after saving.'}>
        {(id, desc) => (
          <div class="secret-value">
            {show ? (
              <textarea
                id={id}
                aria-describedby={desc}
                rows={4}
                value={value}
                disabled={!!file}
                spellcheck={false}
                onInput={(e) => setValue((e.target as HTMLTextAreaElement).value)}
              />
            ) : (
              <input
                id={id}
                aria-describedby={desc}
                type="password"
                value={value}
                disabled={!!file}
                autoComplete="new-password"
                onInput={(e) => setValue((e.target as HTMLInputElement).value)}
              />
            )}
            <button
              type="button"
              class="btn btn-small"
              aria-pressed={show ? 'true' : 'false'}
              aria-label="Show the value"
              onClick={() => setShow(!show)}
              disabled={!!file}
            >
              {show ? 'Hide' : 'Show'}
            </button>
          </div>
        )}
      </Field>
      <Field label="Or read the value from a file" hint="Any bytes, at most 1 MiB (a credentials file, a key).">
        {(id, desc) => (
          <div class="row">
            <input
              id={id}
              aria-describedby={desc}
              type="file"
              onChange={(e) => setFile((e.target as HTMLInputElement).files?.[0] ?? null)}
            />
            {file && (
              <button
                type="button"
                class="btn btn-small"
                onClick={(e) => {
                  const input = (e.currentTarget as HTMLElement).parentElement?.querySelector('input');
                  if (input) input.value = '';
                  setFile(null);
                }}
              >
                Type the value instead
              </button>
            )}
          </div>
        )}
      </Field>
      {key && KEY_RE.test(key) && exists(key, project) && (
        <Notice kind="warn">
          {key} already exists in {project}: saving replaces its value.
        </Notice>
      )}
      <ErrorBanner error={save.error} onDismiss={() => save.setError(null)} />
      <div class="dialog-actions">
        <Button onClick={onClose}>Cancel</Button>
        <Button kind="primary" type="submit" busy={save.busy}>
          Save secret
        </Button>
      </div>
    </form>
  );
}
