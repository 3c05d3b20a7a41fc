// Uploads into storage: each file is one streamed PUT …/{path}?op=CREATE (the server writes
// it to a temp file and renames it into place; the route allows a day per request, so one
// request carries any size up to modules.storage.max_file_size). Progress comes from the
// XHR in lib/api.ts upload(); at most three run at once, the rest wait in a queue.
// Cancel aborts the request: the server keeps what arrived only as a partial (never at the
// destination), and the file's quota reservation is released.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, pathOf, upload } from '../../lib/api';
import { bytes } from '../../lib/format';
import { Progress } from '../../components/ui';

export interface Pick {
  file: File;
  rel: string; // the path below the target folder ("a.txt", "dir/b.txt" for a dropped folder)
}

export interface UploadItem {
  id: number;
  name: string; // rel
  dest: string; // what the user sees: "storage:/alice/data/a.txt"
  size: number;
  sent: number;
  state: 'queued' | 'uploading' | 'done' | 'error' | 'cancelled';
  error?: string;
  file?: File;
  url: string;
  abort?: () => void;
}

const PARALLEL = 3;
let nextId = 1;

// Uploads live at module level, not in the page: moving to another folder or another page
// of the console leaves them running (and listed when you come back). Closing the tab while
// one runs asks first.
const items: UploadItem[] = [];
const renderers = new Set<() => void>();
const finishers = new Set<() => void>();
const changed = () => renderers.forEach((fn) => fn());
const active = () => items.some((i) => i.state === 'queued' || i.state === 'uploading');

function onBeforeUnload(e: BeforeUnloadEvent) {
  if (!active()) return;
  e.preventDefault();
  e.returnValue = '';
}
addEventListener('beforeunload', onBeforeUnload);

function pump() {
  let running = items.filter((i) => i.state === 'uploading').length;
  for (const it of items) {
    if (running >= PARALLEL) break;
    if (it.state !== 'queued' || !it.file) continue;
    running++;
    it.state = 'uploading';
    const h = upload(
      'PUT',
      it.url,
      it.file,
      (sent) => {
        it.sent = sent;
        changed();
      },
      { 'Content-Type': 'application/octet-stream' },
    );
    it.abort = h.abort;
    h.done
      .then(() => {
        it.state = 'done';
        it.sent = it.size;
      })
      .catch((e) => {
        if (e instanceof ApiError && e.code === 'aborted') it.state = 'cancelled';
        else {
          it.state = 'error';
          it.error =
            e instanceof ApiError && e.status === 0 && e.code === 'network'
              ? 'the upload was cut off: the server refused it (a quota or size limit?) or the connection dropped'
              : (e as Error).message;
          if (e instanceof ApiError && e.code && !e.code.startsWith('http_') && e.code !== 'network') it.error += ` (${e.code})`;
        }
      })
      .finally(() => {
        it.file = undefined; // let the browser drop the File
        it.abort = undefined;
        finishers.forEach((fn) => fn());
        pump();
        changed();
      });
  }
  changed();
}

function start(project: string, dir: string[], picks: Pick[], display: (rel: string) => string) {
  for (const p of picks) {
    items.push({
      id: nextId++,
      name: p.rel,
      dest: display(p.rel),
      size: p.file.size,
      sent: 0,
      state: 'queued',
      file: p.file,
      url: `/api/v1/storage/${pathOf(project, ...dir, p.rel)}?op=CREATE`,
    });
  }
  pump();
}

function cancel(id: number) {
  const it = items.find((i) => i.id === id);
  if (!it) return;
  if (it.state === 'queued') {
    it.state = 'cancelled';
    it.file = undefined;
    changed();
  } else it.abort?.();
}

function clear() {
  const keep = items.filter((i) => i.state === 'queued' || i.state === 'uploading');
  items.splice(0, items.length, ...keep);
  changed();
}

// The page's view of the uploads; onFinished runs (debounced) when any upload ends, to
// refresh the listing.
export function useUploads(onFinished: () => void) {
  const [, setTick] = useState(0);
  const finishedRef = useRef(onFinished);
  finishedRef.current = onFinished;
  useEffect(() => {
    let timer: number | undefined;
    const render = () => setTick((n) => n + 1);
    const finished = () => {
      clearTimeout(timer);
      timer = window.setTimeout(() => finishedRef.current(), 150);
    };
    renderers.add(render);
    finishers.add(finished);
    return () => {
      clearTimeout(timer);
      renderers.delete(render);
      finishers.delete(finished);
    };
  }, []);
  return { items, start, cancel, clear };
}

// The files of a drop, folders walked (their files keep their relative paths). The entries
// must be taken while the drop event is being handled; reading them may come later.
export function droppedFiles(dt: DataTransfer): Promise<Pick[]> {
  const files = Array.from(dt.files);
  const entries = Array.from(dt.items ?? [])
    .filter((i) => i.kind === 'file')
    .map((i) => (typeof i.webkitGetAsEntry === 'function' ? i.webkitGetAsEntry() : null));
  if (entries.length === 0 || entries.some((e) => !e)) return Promise.resolve(files.map((f) => ({ file: f, rel: f.name })));
  const out: Pick[] = [];
  const walk = async (entry: FileSystemEntry, prefix: string): Promise<void> => {
    if (entry.isFile) {
      const f = await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej));
      out.push({ file: f, rel: prefix + f.name });
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
        if (batch.length === 0) break;
        for (const c of batch) await walk(c, `${prefix}${entry.name}/`);
      }
    }
  };
  return (async () => {
    for (const e of entries) await walk(e as FileSystemEntry, '');
    return out;
  })();
}

export function UploadList({
  items,
  onCancel,
  onClear,
}: {
  items: UploadItem[];
  onCancel: (id: number) => void;
  onClear: () => void;
}) {
  if (items.length === 0) return null;
  const active = items.filter((i) => i.state === 'queued' || i.state === 'uploading').length;
  return (
    <section class="card uploads" aria-labelledby="uploads-title">
      <div class="row">
        <h2 id="uploads-title">Uploads</h2>
        <span class="muted small" aria-live="polite">
          {active ? `${active} in progress` : 'all finished'}
        </span>
        <span class="spacer" />
        {active < items.length && (
          <button type="button" class="btn btn-small" onClick={onClear}>
            Clear finished
          </button>
        )}
      </div>
      <ul class="upload-list">
        {items.map((it) => {
          const pct = it.size > 0 ? Math.min(100, Math.round((it.sent / it.size) * 100)) : it.state === 'done' ? 100 : 0;
          return (
            <li key={it.id} class={`upload upload-${it.state}`}>
              <div class="upload-head">
                <span class="upload-name" title={it.dest}>
                  {it.name}
                </span>
                <span class="muted small nowrap">
                  {it.state === 'uploading' && `${bytes(it.sent)} of ${bytes(it.size)} · ${pct}%`}
                  {it.state === 'queued' && `${bytes(it.size)} · waiting`}
                  {it.state === 'done' && `${bytes(it.size)} · done`}
                  {it.state === 'cancelled' && 'cancelled'}
                  {it.state === 'error' && 'failed'}
                </span>
                {(it.state === 'queued' || it.state === 'uploading') && (
                  <button
                    type="button"
                    class="btn btn-small"
                    aria-label={`Cancel the upload of ${it.name}`}
                    onClick={() => onCancel(it.id)}
                  >
                    Cancel
                  </button>
                )}
              </div>
              <Progress value={it.state === 'done' ? 1 : it.sent} max={it.state === 'done' ? 1 : it.size} label={`Upload of ${it.name}`} />
              {it.state === 'error' && (
                <p class="upload-error" role="alert">
                  {it.name}: {it.error}
                </p>
              )}
            </li>
          );
        })}
      </ul>
    </section>
  );
}
