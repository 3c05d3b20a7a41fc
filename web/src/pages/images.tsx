// Images in neurod's own registry (the OCI Distribution API under /v2/, authenticated by
// the session cookie like the rest). API (modules/registry/README.md):
//   repositories  GET    /v2/_catalog?n=… (following Link pages)
//   tags          GET    /v2/{repo}/tags/list?n=… (following Link pages)
//   details       GET    /v2/{repo}/manifests/{tag} (Docker-Content-Digest, sizes) and the
//                        config blob GET /v2/{repo}/blobs/{digest} (created, platform)
//   delete tag    DELETE /v2/{repo}/manifests/{tag} (the manifest stays, by digest)
//   share         ShareDialog on image://CLUSTER/{repo}
import { Fragment } from 'preact';
import { useState } from 'preact/hooks';
import { api, pathOf } from '../lib/api';
import { useAsync, useTitle } from '../lib/hooks';
import { useSession } from '../lib/session';
import { bytes, dateTime } from '../lib/format';
import { Button, EmptyState, ErrorBanner, Loading, PageHeader } from '../components/ui';
import { CopyText } from '../components/data';
import { ConfirmDialog } from '../components/ui';
import { ShareDialog } from '../components/share';

const PAGE = 500;

// Follows the registry's `Link: <…>; rel="next"` pages, collecting one field of each page.
async function allPages<T>(first: string, field: string, signal: AbortSignal): Promise<T[]> {
  const out: T[] = [];
  let url: string | null = first;
  for (let i = 0; url && i < 100; i++) {
    const res = await api.get<Response>(url, { raw: true, signal });
    const body = (await res.json()) as Record<string, T[] | null>;
    out.push(...(body[field] ?? []));
    const next = /<([^>]+)>;\s*rel="?next"?/.exec(res.headers.get('Link') ?? '');
    url = next ? next[1] : null;
  }
  return out;
}

interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  platform?: { os?: string; architecture?: string; variant?: string };
}
interface Manifest {
  mediaType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
}

export function ImagesPage(_props: { params: Record<string, string> }) {
  useTitle('Images');
  const { me } = useSession();
  const [filter, setFilter] = useState('');
  const [open, setOpen] = useState<Set<string>>(new Set());
  const [toShare, setToShare] = useState<string | null>(null);
  const repos = useAsync((signal) => allPages<string>(`/v2/_catalog?n=${PAGE}`, 'repositories', signal), []);
  const host = location.host;

  const shown = (repos.data ?? []).filter((r) => !filter || r.includes(filter.trim().toLowerCase()));
  const short = (repo: string) => {
    const [project, ...name] = repo.split('/');
    return project === me.name ? `image:${name.join('/')}` : `image:/${repo}`;
  };
  const toggle = (repo: string) =>
    setOpen((s) => {
      const n = new Set(s);
      if (n.has(repo)) n.delete(repo);
      else n.add(repo);
      return n;
    });

  return (
    <>
      <PageHeader title="Images">
        {(repos.data?.length ?? 0) > 0 && (
          <label class="inline-label">
            <span>Filter</span>
            <input
              type="search"
              value={filter}
              placeholder="name"
              aria-label="Filter images"
              onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
            />
          </label>
        )}
        <Button onClick={repos.reload}>Refresh</Button>
      </PageHeader>
      <ErrorBanner error={repos.error} />
      {repos.loading && !repos.data ? (
        <Loading />
      ) : repos.data && repos.data.length === 0 ? (
        <EmptyState title="No images yet">
          <p>
            Images live in this server's own registry at <code>{host}</code>, as <code>PROJECT/NAME:TAG</code>. Push one:
          </p>
          <ol class="steps">
            <li>
              with the CLI: <CopyText text="neuro image push train:1" label="the push command" /> (after <code>podman build -t train:1 .</code>)
            </li>
            <li>
              or with docker or podman: <CopyText text={`docker login ${host}`} label="the login command" /> (any user name, a
              neurod token as the password; <code>neuro config docker</code> sets this up),
            </li>
            <li>
              <CopyText text={`docker tag train:1 ${host}/${me.name}/train:1`} label="the tag command" /> and{' '}
              <CopyText text={`docker push ${host}/${me.name}/train:1`} label="the push command for docker" />.
            </li>
          </ol>
          <p>Then run it in a job as <code>image:train:1</code>.</p>
        </EmptyState>
      ) : shown.length === 0 && repos.data ? (
        <EmptyState title="No image matches">Nothing is named like “{filter}”. Clear the filter to see every image.</EmptyState>
      ) : (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">Images you may pull</caption>
            <thead>
              <tr>
                <th scope="col">Image</th>
                <th scope="col" class="hide-narrow">
                  Repository
                </th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {shown.map((repo) => (
                <Fragment key={repo}>
                  <tr class={open.has(repo) ? 'expanded' : ''}>
                    <td>
                      <button
                        type="button"
                        class="btn-link"
                        aria-expanded={open.has(repo) ? 'true' : 'false'}
                        aria-controls={`tags-${repo}`}
                        onClick={() => toggle(repo)}
                      >
                        <span aria-hidden="true">{open.has(repo) ? '▾' : '▸'}</span> {short(repo)}
                      </button>
                    </td>
                    <td class="hide-narrow">
                      <code>
                        {host}/{repo}
                      </code>
                    </td>
                    <td class="actions">
                      <button type="button" class="btn btn-small" aria-label={`Share ${short(repo)}`} onClick={() => setToShare(repo)}>
                        Share
                      </button>
                    </td>
                  </tr>
                  {open.has(repo) && (
                    <tr class="expanded">
                      <td colSpan={3} id={`tags-${repo}`}>
                        <Tags repo={repo} short={short(repo)} host={host} />
                      </td>
                    </tr>
                  )}
                </Fragment>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {toShare && (
        <ShareDialog
          uri={`image://${me.cluster}/${toShare}`}
          title={short(toShare)}
          open
          onClose={() => setToShare(null)}
        />
      )}
    </>
  );
}

function Tags({ repo, short, host }: { repo: string; short: string; host: string }) {
  const tags = useAsync((signal) => allPages<string>(`/v2/${pathOf(repo)}/tags/list?n=${PAGE}`, 'tags', signal), [repo]);
  const [toDelete, setToDelete] = useState<string | null>(null);
  if (tags.loading && !tags.data) return <Loading label="Loading tags…" />;
  if (tags.error) return <ErrorBanner error={tags.error} />;
  const list = tags.data ?? [];
  return (
    <>
      {list.length === 0 ? (
        <p class="muted">
          No tags: the image is only reachable by digest (<code>neuro image push</code> a tag to it).
        </p>
      ) : (
        <table class="tags" aria-label={`Tags of ${short}`}>
          <thead>
            <tr>
              <th scope="col">Tag</th>
              <th scope="col" class="hide-narrow">
                Digest
              </th>
              <th scope="col" class="num">
                Size
              </th>
              <th scope="col" class="hide-narrow">
                Created
              </th>
              <th scope="col">Use it</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.map((t) => (
              <TagRow key={t} repo={repo} tag={t} short={short} host={host} onDelete={() => setToDelete(t)} />
            ))}
          </tbody>
        </table>
      )}
      <ConfirmDialog
        open={toDelete !== null}
        title="Delete tag"
        confirmLabel="Delete tag"
        onClose={() => setToDelete(null)}
        onConfirm={async () => {
          await api.del(`/v2/${pathOf(repo)}/manifests/${encodeURIComponent(toDelete ?? '')}`);
          tags.reload();
        }}
      >
        <p>
          Delete the tag <strong>{`${short}:${toDelete}`}</strong>? Jobs that name it can no longer start. The image itself
          stays, reachable by digest and by its other tags.
        </p>
      </ConfirmDialog>
    </>
  );
}

function TagRow({
  repo,
  tag,
  short,
  host,
  onDelete,
}: {
  repo: string;
  tag: string;
  short: string;
  host: string;
  onDelete: () => void;
}) {
  const info = useAsync(
    async (signal) => {
      const res = await api.get<Response>(`/v2/${pathOf(repo)}/manifests/${encodeURIComponent(tag)}`, { raw: true, signal });
      const digest = res.headers.get('Docker-Content-Digest') ?? '';
      const m = JSON.parse(await res.text()) as Manifest;
      if (m.manifests) {
        const platforms = m.manifests
          .map((d) => d.platform && [d.platform.os, d.platform.architecture, d.platform.variant].filter(Boolean).join('/'))
          .filter(Boolean);
        return { digest, size: null as number | null, created: null as string | null, platforms };
      }
      const size = (m.config?.size ?? 0) + (m.layers ?? []).reduce((a, l) => a + (l.size || 0), 0);
      let created: string | null = null;
      if (m.config?.digest) {
        try {
          const c = await api.get<Response>(`/v2/${pathOf(repo)}/blobs/${m.config.digest}`, { raw: true, signal });
          created = (JSON.parse(await c.text()) as { created?: string }).created ?? null;
        } catch {
          /* a config that is not JSON (an artifact): no date */
        }
      }
      return { digest, size, created, platforms: [] as string[] };
    },
    [repo, tag],
  );
  const d = info.data;
  return (
    <tr>
      <td>
        <strong>{tag}</strong>
      </td>
      <td class="hide-narrow">
        {d ? <code title={d.digest}>{d.digest.replace(/^sha256:/, '').slice(0, 12)}</code> : info.error ? '—' : '…'}
      </td>
      <td class="num nowrap">
        {d ? (d.size !== null ? bytes(d.size) : `${d.platforms.length || 'several'} platforms`) : info.error ? '—' : '…'}
      </td>
      <td class="nowrap hide-narrow">{d ? dateTime(d.created) : '—'}</td>
      <td>
        <div class="image-hints small">
          <CopyText text={`${short}:${tag}`} label={`the job image ${short}:${tag}`} />
          <CopyText text={`docker pull ${host}/${repo}:${tag}`} label={`the pull command for ${tag}`} />
        </div>
        {info.error && <span class="upload-error small">{info.error.message}</span>}
      </td>
      <td class="actions">
        <button type="button" class="btn btn-small btn-danger" aria-label={`Delete tag ${tag}`} onClick={onDelete}>
          Delete
        </button>
      </td>
    </tr>
  );
}
