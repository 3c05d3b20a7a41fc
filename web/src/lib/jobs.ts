// Jobs: the API's shapes (modules/jobs/README.md "Job (response)") and small helpers the
// jobs pages share. Calls go through api.ts.
import { api, pathOf } from './api';

export type JobStatus = 'pending' | 'running' | 'suspended' | 'succeeded' | 'failed' | 'cancelled';

export interface StatusItem {
  status: JobStatus;
  reason: string;
  description: string;
  transition_time: string;
  exit_code: number | null;
}

export interface Resources {
  cpu: number;
  memory: number;
  memory_mb: number;
  shm: boolean;
  nvidia_gpu: number;
  nvidia_gpu_model?: string;
}

export interface Job {
  id: string;
  name: string | null;
  owner: string;
  project_name: string;
  cluster_name: string;
  uri: string;
  status: JobStatus;
  history: {
    status: JobStatus;
    reason: string;
    description: string;
    created_at: string;
    started_at: string | null;
    finished_at: string | null;
    exit_code: number | null;
    run_time_seconds: number;
    restarts: number;
  };
  statuses?: StatusItem[];
  container: {
    image: string;
    command: string[];
    entrypoint: string[];
    env: Record<string, string>;
    working_dir: string;
    tty: boolean;
    resources: Resources;
    volumes: { src_storage_uri: string; dst_path: string; read_only: boolean }[];
    secret_env: Record<string, string>;
    secret_volumes: { src_secret_uri: string; dst_path: string }[];
    disk_volumes: { src_disk_uri: string; dst_path: string; read_only: boolean }[];
    http: { port: number; requires_auth: boolean } | null;
  };
  preset_name: string | null;
  tags: string[];
  description: string;
  restart_policy: string;
  priority: string;
  max_run_time_minutes: number | null;
  executor: string | null;
  restarts: number;
}

// GET /api/v1/config "resource_presets" (what `neuro run --preset` picks from).
export interface Preset {
  name: string;
  cpu: number;
  memory: number;
  memory_mb: number;
  gpu: number;
  gpu_model: string | null;
  shm: number;
  credits_per_hour?: string | number;
}

export const FINISHED: JobStatus[] = ['succeeded', 'failed', 'cancelled'];
export const isFinished = (s: string) => (FINISHED as string[]).includes(s);
export const isActive = (s: string) => !isFinished(s);

export function jobTitle(j: Pick<Job, 'id' | 'name'>): string {
  return j.name || j.id;
}

// The argv as a shell would read it back: words with spaces or quotes are quoted.
export function quoteArgv(argv: string[] | undefined): string {
  if (!argv || !argv.length) return '';
  return argv
    .map((a) => (a !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}

export function memoryText(bytes: number): string {
  if (!bytes) return '0';
  const gib = bytes / 2 ** 30;
  if (gib >= 1) return `${Number.isInteger(gib) ? gib : gib.toFixed(1)} GiB`;
  return `${Math.round(bytes / 2 ** 20)} MiB`;
}

export function resourcesText(r: { cpu: number; memory: number; gpu?: number; nvidia_gpu?: number; gpu_model?: string | null; nvidia_gpu_model?: string }): string {
  const gpu = r.gpu ?? r.nvidia_gpu ?? 0;
  const model = r.gpu_model ?? r.nvidia_gpu_model;
  let s = `${r.cpu} CPU · ${memoryText(r.memory)}`;
  if (gpu) s += ` · ${gpu} GPU${model ? ` ${model}` : ''}`;
  return s;
}

export function presetLabel(p: Preset): string {
  return `${p.name} (${resourcesText(p)})`;
}

export const jobPath = (id: string, ...rest: string[]) => `/api/v1/jobs/${pathOf(id, ...rest)}`;

export async function getJob(id: string, signal?: AbortSignal): Promise<Job> {
  return api.get<Job>(jobPath(id), { signal });
}

export async function killJob(id: string): Promise<void> {
  await api.del(jobPath(id));
}

export interface ClusterConfig {
  presets: Preset[];
  modules: string[]; // the modules this neurod runs (registry, secrets, storage…)
}

export async function getClusterConfig(signal?: AbortSignal): Promise<ClusterConfig> {
  const c = await api.get<{ resource_presets?: Preset[]; modules?: string[] }>('/api/v1/config', { signal });
  return { presets: c.resource_presets ?? [], modules: c.modules ?? [] };
}

// Newest first: what the list shows.
export function byCreatedDesc(a: Job, b: Job): number {
  const ta = a.history?.created_at ?? '';
  const tb = b.history?.created_at ?? '';
  return ta < tb ? 1 : ta > tb ? -1 : a.id < b.id ? 1 : -1;
}
