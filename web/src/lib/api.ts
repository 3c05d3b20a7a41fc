// The one way the console talks to neurod: same-origin requests authenticated by the
// HttpOnly session cookie. Mutating requests carry the CSRF token (the readable
// `neurod_csrf` cookie, derived by the server from the session) in X-CSRF-Token.
// Errors come back as ApiError with the server's own message, which pages show as is.

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public requestId = '',
  ) {
    super(message);
  }
}

type Listener = () => void;
const unauthenticatedListeners = new Set<Listener>();
// The session ended (expired, revoked, logged out elsewhere): the app shows the login page.
export function onUnauthenticated(fn: Listener): () => void {
  unauthenticatedListeners.add(fn);
  return () => unauthenticatedListeners.delete(fn);
}

// Tells the app that the session is gone (a stream learned it rather than a request).
export function sessionEnded(): void {
  unauthenticatedListeners.forEach((fn) => fn());
}

export function cookie(name: string): string {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return '';
}

export function csrfHeaders(method: string): Record<string, string> {
  if (method === 'GET' || method === 'HEAD') return {};
  const token = cookie('neurod_csrf');
  return token ? { 'X-CSRF-Token': token } : {};
}

async function errorFrom(res: Response): Promise<ApiError> {
  let code = `http_${res.status}`;
  let message = `${res.status} ${res.statusText}`;
  let requestId = res.headers.get('X-Request-Id') || '';
  try {
    const text = await res.text();
    try {
      const j = JSON.parse(text);
      const e = j.error ?? j.errors?.[0] ?? j;
      if (typeof e === 'object' && e) {
        if (e.code) code = String(e.code);
        if (e.message) message = String(e.message);
        if (e.request_id) requestId = String(e.request_id);
      }
    } catch {
      if (text.trim()) message = text.trim().slice(0, 500);
    }
  } catch {
    /* the body could not be read: keep the status line */
  }
  return new ApiError(res.status, code, message, requestId);
}

export interface RequestOptions {
  body?: unknown; // JSON-encoded unless a string, Blob or FormData
  headers?: Record<string, string>;
  signal?: AbortSignal;
  raw?: boolean; // return the Response instead of parsed JSON
}

export async function request<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...csrfHeaders(method), ...opts.headers };
  let body: BodyInit | undefined;
  if (opts.body !== undefined) {
    if (typeof opts.body === 'string' || opts.body instanceof Blob || opts.body instanceof FormData) {
      body = opts.body as BodyInit;
    } else {
      body = JSON.stringify(opts.body);
      headers['Content-Type'] = 'application/json';
    }
  }
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body, credentials: 'same-origin', signal: opts.signal });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'neurod cannot be reached: check that it is running and your network');
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401 && !path.startsWith('/api/v1/auth/login')) unauthenticatedListeners.forEach((fn) => fn());
    throw err;
  }
  if (opts.raw) return res as unknown as T;
  if (res.status === 204) return undefined as T;
  const type = res.headers.get('Content-Type') || '';
  if (type.includes('json')) return (await res.json()) as T;
  return (await res.text()) as unknown as T;
}

export const api = {
  get: <T = unknown>(path: string, opts?: RequestOptions) => request<T>('GET', path, opts),
  post: <T = unknown>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('POST', path, { ...opts, body }),
  put: <T = unknown>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('PUT', path, { ...opts, body }),
  patch: <T = unknown>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('PATCH', path, { ...opts, body }),
  del: <T = unknown>(path: string, opts?: RequestOptions) => request<T>('DELETE', path, opts),
};

// Path segments are escaped one by one, so names with spaces or '#' stay one segment.
export function pathOf(...segments: string[]): string {
  return segments
    .flatMap((s) => s.split('/'))
    .filter((s) => s !== '')
    .map(encodeURIComponent)
    .join('/');
}

export function query(params: Record<string, string | number | boolean | undefined | null | string[]>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '' || v === false) continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else q.append(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

// A WebSocket to a neurod stream (logs, top): same origin, the cookie authenticates it.
export function websocket(path: string, protocols?: string | string[]): WebSocket {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return new WebSocket(`${scheme}//${location.host}${path}`, protocols);
}

export interface UploadHandle {
  done: Promise<unknown>;
  abort: () => void;
}

// fetch() cannot report upload progress; XMLHttpRequest can.
export function upload(
  method: string,
  path: string,
  body: Blob,
  onProgress: (sent: number, total: number) => void,
  headers: Record<string, string> = {},
): UploadHandle {
  const xhr = new XMLHttpRequest();
  const done = new Promise<unknown>((resolve, reject) => {
    xhr.open(method, path);
    xhr.withCredentials = true;
    for (const [k, v] of Object.entries({ ...csrfHeaders(method), ...headers })) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : body.size);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(body.size, body.size);
        try {
          resolve(xhr.responseText ? JSON.parse(xhr.responseText) : undefined);
        } catch {
          resolve(xhr.responseText);
        }
        return;
      }
      let code = `http_${xhr.status}`;
      let message = `${xhr.status} ${xhr.statusText}`;
      try {
        const e = JSON.parse(xhr.responseText).error;
        if (e?.code) code = e.code;
        if (e?.message) message = e.message;
      } catch {
        /* keep the status line */
      }
      if (xhr.status === 401) unauthenticatedListeners.forEach((fn) => fn());
      reject(new ApiError(xhr.status, code, message));
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', 'the upload was interrupted: check your connection and try again'));
    xhr.onabort = () => reject(new ApiError(0, 'aborted', 'upload cancelled'));
    xhr.send(body);
  });
  return { done, abort: () => xhr.abort() };
}

// A principal name in an API path writes '/' as ':' (alice/roles/readers → alice:roles:readers).
export function principalPath(name: string): string {
  return encodeURIComponent(name.trim().replace(/\//g, ':'));
}

// /api/v1/users/NAME[/rest…] for a user, a service account or a role.
export function userPath(name: string, ...rest: string[]): string {
  return `/api/v1/users/${principalPath(name)}${rest.length ? '/' + pathOf(...rest) : ''}`;
}
