// The storage browser: /storage/{project}/{path…} mirrors storage://CLUSTER/PROJECT/PATH,
// so a link to someone else's shared folder works for whoever may read it. /storage opens
// the caller's personal project. API (modules/storage/README.md):
//   list      GET    /api/v1/storage/{project}/{path}?op=LISTSTATUS
//   folder    GET    …?op=GETFILESTATUS (the caller's permission on the folder)
//   usage     GET    /api/v1/storage/{project}?op=GETDISKUSAGE
//   upload    PUT    …/{name}?op=CREATE (pages/storage/uploads.tsx)
//   mkdir     PUT    …?op=MKDIRS
//   download  GET    …/{name} (op OPEN, a same-origin <a download>)
//   delete    DELETE …/{name} (recursive for folders)
//   rename    POST   …/{name}?op=RENAME&destination=NEW (relative to the folder)
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, pathOf, query } from '../lib/api';
import { useAction, useAsync, useTitle } from '../lib/hooks';
import { Link, navigate } from '../lib/router';
import { useSession } from '../lib/session';
import { bytes, dateTime } from '../lib/format';
import { Button, Dialog, EmptyState, ErrorBanner, Field, Loading, Notice, PageHeader } from '../components/ui';
import { CopyText, FileIcon, FolderIcon } from '../components/data';
import { ConfirmDialog } from '../components/ui';
import { ShareDialog } from '../components/share';
import { droppedFiles, type Pick, UploadList, useUploads } from './storage/uploads';

interface FileStatus {
  path: string;
  length: number;
  modificationTime: number;
  permission: string;
  type: 'FILE' | 'DIRECTORY' | 'SYMLINK';
}

interface DiskUsage {
  total: number;
  used: number;
  free: number;
  project?: { name: string; used: number; limit: number | null };
}

const canWrite = (perm: string | undefined) => perm === undefined || perm === 'write' || perm === 'manage';

export function StoragePage({ params }: { params: Record<string, string> }) {
  const { me } = useSession();
  const rest = (params['*'] ?? '').split('/').filter(Boolean);
  useEffect(() => {
    if (rest.length === 0) navigate(`/storage/${encodeURIComponent(me.name)}`, true);
  }, [rest.length, me.name]);
  if (rest.length === 0) return null;
  return <Browser project={rest[0]} dir={rest.slice(1)} />;
}

function Browser({ project, dir }: { project: string; dir: string[] }) {
  const { me } = useSession();
  const key = [project, ...dir].join('/');
  useTitle(dir.length ? `${dir[dir.length - 1]} · Storage` : 'Storage');
  const apiPath = (...more: string[]) => `/api/v1/storage/${pathOf(project, ...dir, ...more)}`;
  const uriPath = (...more: string[]) => [project, ...dir, ...more].join('/');
  // The short form for one's own project, as the CLI takes it.
  const display = (...more: string[]) => {
    const rel = [...dir, ...more].join('/');
    return project === me.name ? `storage:${rel}` : `storage:/${project}${rel ? '/' + rel : ''}`;
  };
  const folderUrl = (...more: string[]) => `/storage/${pathOf(project, ...dir, ...more)}`;

  const listing = useAsync(
    async (signal) => {
      const [list, stat] = await Promise.all([
        api.get<{ FileStatuses: { FileStatus: FileStatus[] } }>(`${apiPath()}?op=LISTSTATUS`, { signal }),
        api.get<{ FileStatus: FileStatus }>(`${apiPath()}?op=GETFILESTATUS`, { signal }).catch(() => null),
      ]);
      const entries = [...list.FileStatuses.FileStatus].sort(
        (a, b) => Number(b.type === 'DIRECTORY') - Number(a.type === 'DIRECTORY') || a.path.localeCompare(b.path),
      );
      return { entries, self: stat?.FileStatus };
    },
    [key],
  );
  const usage = useAsync(
    (signal) => api.get<DiskUsage>(`/api/v1/storage/${pathOf(project)}?op=GETDISKUSAGE`, { signal }).catch(() => null),
    [project],
  );
  const reload = () => {
    listing.reload();
    usage.reload();
  };
  const uploads = useUploads(reload);

  const [dragging, setDragging] = useState(false);
  const [mkdirOpen, setMkdirOpen] = useState(false);
  const [toDelete, setToDelete] = useState<FileStatus | null>(null);
  const [toRename, setToRename] = useState<FileStatus | null>(null);
  const [toShare, setToShare] = useState<{ uri: string; title: string } | null>(null);
  const [replacing, setReplacing] = useState<Pick[] | null>(null);
  const [fileInput, setFileInput] = useState<HTMLInputElement | null>(null);

  const self = listing.data?.self;
  const isFile = self?.type === 'FILE';
  const writable = canWrite(self?.permission) && !isFile;
  const entries = listing.data?.entries ?? [];

  const begin = (picks: Pick[]) => {
    if (picks.length === 0) return;
    const names = new Set(entries.map((e) => e.path));
    if (picks.some((p) => names.has(p.rel.split('/')[0]) && !p.rel.includes('/'))) setReplacing(picks);
    else uploads.start(project, dir, picks, (rel) => display(rel));
  };

  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    if (!e.dataTransfer || !writable) return;
    void droppedFiles(e.dataTransfer).then(begin);
  };
  const dragHandlers = {
    onDragEnter: (e: DragEvent) => {
      if (!writable || !e.dataTransfer?.types.includes('Files')) return;
      e.preventDefault();
      setDragging(true);
    },
    onDragOver: (e: DragEvent) => {
      if (!writable || !e.dataTransfer?.types.includes('Files')) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = 'copy';
      if (!dragging) setDragging(true);
    },
    onDragLeave: (e: DragEvent) => {
      const to = e.relatedTarget as Node | null;
      if (!to || !(e.currentTarget as HTMLElement).contains(to)) setDragging(false);
    },
    onDrop,
  };

  const crumbs = [{ label: project === me.name ? `storage: (${project})` : `storage:/${project}`, href: `/storage/${pathOf(project)}` }];
  dir.forEach((seg, i) => crumbs.push({ label: seg, href: `/storage/${pathOf(project, ...dir.slice(0, i + 1))}` }));

  const notFound = listing.error instanceof ApiError && listing.error.status === 404;

  return (
    <>
      <PageHeader title="Storage">
        <ProjectPicker current={project} />
        {writable && (
          <>
            <Button onClick={() => setMkdirOpen(true)}>New folder</Button>
            <Button kind="primary" onClick={() => fileInput?.click()}>
              Upload files
            </Button>
            <input
              ref={setFileInput}
              type="file"
              multiple
              class="visually-hidden"
              tabIndex={-1}
              aria-label="Files to upload"
              onChange={(e) => {
                const input = e.target as HTMLInputElement;
                begin(Array.from(input.files ?? []).map((f) => ({ file: f, rel: f.name })));
                input.value = '';
              }}
            />
          </>
        )}
        {(!self || self.permission === 'manage') && (
          <Button onClick={() => setToShare({ uri: `storage://${me.cluster}/${uriPath()}`, title: display() })}>
            Share {isFile ? 'file' : dir.length ? 'folder' : 'project storage'}
          </Button>
        )}
      </PageHeader>

      <nav aria-label="Breadcrumb" class="breadcrumb">
        <ol>
          {crumbs.map((c, i) => (
            <li key={c.href}>
              {i === crumbs.length - 1 ? (
                <span aria-current="page">{c.label}</span>
              ) : (
                <Link href={c.href}>{c.label}</Link>
              )}
            </li>
          ))}
        </ol>
      </nav>

      <div class="row storage-meta small">
        <CopyText text={display()} label="the storage URI" />
        {usage.data?.project && (
          <span class="muted">
            Project {usage.data.project.name} uses {bytes(usage.data.project.used)}
            {usage.data.project.limit !== null ? ` of ${bytes(usage.data.project.limit)}` : ' (no quota)'}
            {' · '}
            {bytes(usage.data.free)} free on the volume
          </span>
        )}
        {self && !canWrite(self.permission) && <span class="badge">read-only for you</span>}
      </div>

      <UploadList items={uploads.items} onCancel={uploads.cancel} onClear={uploads.clear} />

      <section
        class={`dropzone-area${dragging ? ' dragging' : ''}`}
        aria-label={`Contents of ${display()}`}
        {...dragHandlers}
      >
        {dragging && (
          <div class="drop-hint" aria-hidden="true">
            Drop files to upload them to {display()}
          </div>
        )}
        {listing.loading && !listing.data && !listing.error ? (
          <Loading />
        ) : notFound ? (
          <EmptyState title="Not found">
            {display()} does not exist, or you may not read it. <Link href={`/storage/${pathOf(me.name)}`}>Go to your storage</Link>.
          </EmptyState>
        ) : listing.error ? (
          <ErrorBanner error={listing.error} />
        ) : entries.length === 0 ? (
          <div class="empty dropzone">
            <p class="empty-title">This folder is empty — drop files here or Upload</p>
            {writable ? (
              <div class="row center">
                <Button kind="primary" onClick={() => fileInput?.click()}>
                  Upload files
                </Button>
                <Button onClick={() => setMkdirOpen(true)}>New folder</Button>
              </div>
            ) : (
              <p>You may read this folder but not add to it.</p>
            )}
            <p class="hint">
              From a terminal: <code>neuro cp -r ./data {display() + (dir.length ? '/' : '')}</code>
            </p>
          </div>
        ) : isFile ? (
          <Notice>
            {display()} is a file ({bytes(self?.length)}).{' '}
            <a href={apiPath()} download={dir[dir.length - 1]}>
              Download it
            </a>
          </Notice>
        ) : (
          <div class="table-wrap">
            <table class="files">
              <caption class="visually-hidden">Files and folders in {display()}</caption>
              <thead>
                <tr>
                  <th scope="col" class="col-icon">
                    <span class="visually-hidden">Type</span>
                  </th>
                  <th scope="col">Name</th>
                  <th scope="col" class="num">
                    Size
                  </th>
                  <th scope="col" class="hide-narrow">
                    Modified
                  </th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {entries.map((e) => {
                  const folder = e.type === 'DIRECTORY';
                  return (
                    <tr key={e.path}>
                      <td class="col-icon">
                        {folder ? <FolderIcon /> : <FileIcon />}
                        <span class="visually-hidden">{folder ? 'folder' : e.type === 'SYMLINK' ? 'link' : 'file'}</span>
                      </td>
                      <td class="name">
                        {folder ? <Link href={folderUrl(e.path)}>{e.path}</Link> : <span>{e.path}</span>}
                      </td>
                      <td class="num nowrap">{folder ? '—' : bytes(e.length)}</td>
                      <td class="nowrap hide-narrow">{dateTime(e.modificationTime * 1000)}</td>
                      <td class="actions">
                        {!folder && (
                          <a class="btn btn-small" href={apiPath(e.path)} download={e.path} aria-label={`Download ${e.path}`}>
                            Download
                          </a>
                        )}
                        {e.permission === 'manage' && (
                          <button
                            type="button"
                            class="btn btn-small"
                            aria-label={`Share ${e.path}`}
                            onClick={() => setToShare({ uri: `storage://${me.cluster}/${uriPath(e.path)}`, title: display(e.path) })}
                          >
                            Share
                          </button>
                        )}
                        {canWrite(e.permission) && (
                          <button
                            type="button"
                            class="btn btn-small hide-narrow"
                            aria-label={`Rename ${e.path}`}
                            onClick={() => setToRename(e)}
                          >
                            Rename
                          </button>
                        )}
                        {canWrite(e.permission) && (
                          <button
                            type="button"
                            class="btn btn-small btn-danger"
                            aria-label={`Delete ${e.path}`}
                            onClick={() => setToDelete(e)}
                          >
                            Delete
                          </button>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
        {writable && entries.length > 0 && (
          <p class="hint drop-note">Drop files or folders onto this list to upload them into {display()}</p>
        )}
      </section>

      <NameDialog
        open={mkdirOpen}
        title="New folder"
        label="Folder name"
        submitLabel="Create"
        hint={`Made in ${display()}; a/b makes both.`}
        onClose={() => setMkdirOpen(false)}
        submit={async (name) => {
          await api.put(`${apiPath(name)}?op=MKDIRS`);
          listing.reload();
        }}
      />

      <NameDialog
        key={toRename?.path ?? ''}
        open={toRename !== null}
        title={`Rename ${toRename?.path ?? ''}`}
        label="New name"
        initial={toRename?.path ?? ''}
        submitLabel="Rename"
        hint={`Stays in ${display()}; an existing file of that name is replaced.`}
        onClose={() => setToRename(null)}
        submit={async (name) => {
          if (!toRename || name === toRename.path) return;
          if (name.includes('/')) throw new Error('A name without /: renaming keeps the entry in this folder.');
          await api.post(`${apiPath(toRename.path)}${query({ op: 'RENAME', destination: name })}`);
          listing.reload();
        }}
      />

      <ConfirmDialog
        open={toDelete !== null}
        title={toDelete?.type === 'DIRECTORY' ? 'Delete folder' : 'Delete file'}
        confirmLabel="Delete"
        onClose={() => setToDelete(null)}
        onConfirm={async () => {
          if (!toDelete) return;
          await api.del(`${apiPath(toDelete.path)}${query({ op: 'DELETE', recursive: toDelete.type === 'DIRECTORY' ? 'true' : undefined })}`);
          reload();
        }}
      >
        {toDelete?.type === 'DIRECTORY' ? (
          <p>
            Delete the folder <strong>{display(toDelete.path)}</strong> <strong>and everything in it</strong>? Jobs that
            mount it lose it too. This cannot be undone.
          </p>
        ) : (
          <p>
            Delete <strong>{toDelete && display(toDelete.path)}</strong>? This cannot be undone.
          </p>
        )}
      </ConfirmDialog>

      <ConfirmDialog
        open={replacing !== null}
        title="Replace files?"
        confirmLabel="Replace"
        onClose={() => setReplacing(null)}
        onConfirm={async () => {
          if (replacing) uploads.start(project, dir, replacing, (rel) => display(rel));
        }}
      >
        <p>
          {replacing
            ?.filter((p) => entries.some((e) => e.path === p.rel))
            .map((p) => p.rel)
            .join(', ')}{' '}
          already exist in {display()}. Uploading replaces them.
        </p>
      </ConfirmDialog>

      {toShare && <ShareDialog uri={toShare.uri} title={toShare.title} open onClose={() => setToShare(null)} />}
    </>
  );
}

// The storage roots the caller can see: their projects and the projects others shared into.
function ProjectPicker({ current }: { current: string }) {
  const { me } = useSession();
  const roots = useAsync(
    async (signal) => {
      const names = new Set(me.projects.map((p) => p.name));
      names.add(me.name);
      try {
        const tree = await api.get<{ children?: Record<string, unknown> }>(
          `/api/v1/users/${encodeURIComponent(me.name)}/permissions/tree${query({ uri: `storage://${me.cluster}`, depth: 1 })}`,
          { signal },
        );
        Object.keys(tree.children ?? {}).forEach((n) => names.add(n));
      } catch {
        /* the projects from whoami are enough */
      }
      return [...names].sort();
    },
    [me.name],
  );
  const list = roots.data ?? [me.name];
  if (!list.includes(current)) list.push(current);
  if (list.length < 2) return null;
  return (
    <label class="inline-label">
      <span>Project</span>
      <select value={current} onChange={(e) => navigate(`/storage/${pathOf((e.target as HTMLSelectElement).value)}`)}>
        {list.map((p) => (
          <option key={p} value={p}>
            {p === me.name ? `${p} (yours)` : p}
          </option>
        ))}
      </select>
    </label>
  );
}

function NameDialog({
  open,
  onClose,
  submit,
  title,
  label,
  hint,
  initial = '',
  submitLabel,
}: {
  open: boolean;
  onClose: () => void;
  submit: (name: string) => Promise<void>;
  title: string;
  label: string;
  hint: string;
  initial?: string;
  submitLabel: string;
}) {
  const [name, setName] = useState(initial);
  const act = useAction(async () => {
    const n = name.trim();
    if (!n || n === '.' || n === '..') throw new Error('Give it a name (not . or ..).');
    await submit(n);
  });
  const close = () => {
    setName(initial);
    act.setError(null);
    onClose();
  };
  return (
    <Dialog title={title} open={open} onClose={close}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          if (await act.run()) close();
        }}
      >
        <Field label={label} hint={hint}>
          {(id, desc) => (
            <input
              id={id}
              aria-describedby={desc}
              value={name}
              required
              autoFocus
              onInput={(e) => setName((e.target as HTMLInputElement).value)}
            />
          )}
        </Field>
        <ErrorBanner error={act.error} />
        <div class="dialog-actions">
          <Button onClick={close}>Cancel</Button>
          <Button kind="primary" type="submit" busy={act.busy}>
            {submitLabel}
          </Button>
        </div>
      </form>
    </Dialog>
  );
}
