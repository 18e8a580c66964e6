// The HTTP API as the UI uses it: the ACL token from localStorage on every request, the
// datacenter as `?dc=`, and blocking queries (X-Consul-Index + `?index=&wait=`) for every
// view that updates live.
import { useEffect, useState } from 'preact/hooks';

const TOKEN_KEY = 'meridian:token';

export function getToken(): string {
  try {
    return localStorage.getItem(TOKEN_KEY) ?? '';
  } catch {
    return '';
  }
}

export function setToken(t: string): void {
  if (t) localStorage.setItem(TOKEN_KEY, t);
  else localStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface Answer<T> {
  data: T;
  index: number;
}

/** Adds `key=value` to a path that may already have a query. */
export function withParam(path: string, key: string, value?: string): string {
  const sep = path.includes('?') ? '&' : '?';
  return value === undefined
    ? `${path}${sep}${key}`
    : `${path}${sep}${key}=${encodeURIComponent(value)}`;
}

export interface CallOpts {
  dc?: string;
  method?: string;
  body?: BodyInit;
  signal?: AbortSignal;
  raw?: boolean;
}

/** One API call; JSON answers are parsed, 404 on a read gives `null` (Consul's "no such key"). */
export async function call<T>(path: string, opts: CallOpts = {}): Promise<Answer<T>> {
  let url = path;
  if (opts.dc) url = withParam(url, 'dc', opts.dc);
  const headers: Record<string, string> = {};
  const token = getToken();
  if (token) headers['X-Consul-Token'] = token;
  const r = await fetch(url, {
    method: opts.method ?? 'GET',
    body: opts.body,
    headers,
    signal: opts.signal,
  });
  const index = Number(r.headers.get('X-Consul-Index') ?? '0') || 0;
  if (r.status === 404 && (opts.method ?? 'GET') === 'GET') {
    return { data: null as T, index };
  }
  if (!r.ok) {
    const text = (await r.text()).trim();
    const hint = r.status === 403 ? ' (set an ACL token at the top right)' : '';
    throw new ApiError(r.status, `${r.status}: ${text || r.statusText}${hint}`);
  }
  if (opts.raw) return { data: (await r.text()) as T, index };
  const text = await r.text();
  return { data: (text ? JSON.parse(text) : null) as T, index };
}

// Browsers open at most 6 HTTP/1.1 connections to one host; a blocking query holds one
// for up to `wait`. Blocking queries share 4 of them so writes and one-off reads always
// have a connection.
const MAX_BLOCKING = 4;
let blockingInFlight = 0;
const blockingQueue: Array<() => void> = [];

async function acquire(signal: AbortSignal): Promise<void> {
  if (blockingInFlight < MAX_BLOCKING) {
    blockingInFlight++;
    return;
  }
  await new Promise<void>((resolve, reject) => {
    const go = () => {
      signal.removeEventListener('abort', cancel);
      blockingInFlight++;
      resolve();
    };
    const cancel = () => {
      const i = blockingQueue.indexOf(go);
      if (i >= 0) blockingQueue.splice(i, 1);
      reject(new DOMException('aborted', 'AbortError'));
    };
    blockingQueue.push(go);
    signal.addEventListener('abort', cancel, { once: true });
  });
}

function release(): void {
  blockingInFlight--;
  const next = blockingQueue.shift();
  if (next) next();
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

export interface Watched<T> {
  data?: T;
  index: number;
  error?: string;
  loading: boolean;
}

/**
 * Reads `path` and keeps it current with blocking queries: each answer's X-Consul-Index
 * is sent back as `?index=` and the server holds the request until something changes
 * (or `wait` passes). Errors back off (1 s doubling to 15 s) and retry.
 * `path === null` watches nothing.
 */
export function useWatch<T>(path: string | null, dc?: string, wait = '60s'): Watched<T> {
  const [state, setState] = useState<Watched<T>>({ index: 0, loading: true });
  useEffect(() => {
    setState({ index: 0, loading: path !== null });
    if (path === null) return;
    const ctl = new AbortController();
    (async () => {
      let index = 0;
      let backoff = 1000;
      while (!ctl.signal.aborted) {
        const p = index > 0 ? withParam(withParam(path, 'index', String(index)), 'wait', wait) : path;
        try {
          await acquire(ctl.signal);
          let a: Answer<T>;
          try {
            a = await call<T>(p, { dc, signal: ctl.signal });
          } finally {
            release();
          }
          backoff = 1000;
          // An index that goes backwards (a restored snapshot) starts over, as Consul's docs say.
          const changed = a.index !== index || index === 0;
          index = a.index < index ? 0 : a.index;
          if (changed) setState({ data: a.data, index: a.index, loading: false });
          if (a.index === 0) {
            // No index: the endpoint does not block; don't spin.
            await sleep(5000, ctl.signal);
          }
        } catch (e) {
          if (ctl.signal.aborted) return;
          setState((s) => ({ ...s, loading: false, error: String((e as Error).message ?? e) }));
          await sleep(backoff, ctl.signal);
          backoff = Math.min(backoff * 2, 15000);
          index = 0;
        }
      }
    })();
    return () => ctl.abort();
  }, [path, dc, wait]);
  return state;
}

/** A one-off read, redone whenever one of `deps` changes (e.g. a watched index). */
export function useFetch<T>(path: string | null, dc: string | undefined, deps: unknown[]): Watched<T> {
  const [state, setState] = useState<Watched<T>>({ index: 0, loading: true });
  useEffect(() => {
    if (path === null) return;
    const ctl = new AbortController();
    call<T>(path, { dc, signal: ctl.signal })
      .then((a) => setState({ data: a.data, index: a.index, loading: false }))
      .catch((e) => {
        if (!ctl.signal.aborted) setState((s) => ({ ...s, loading: false, error: String(e.message ?? e) }));
      });
    return () => ctl.abort();
  }, [path, dc, ...deps]);
  return state;
}

// ---- API shapes (the fields the UI reads) ----

export interface Check {
  Node: string;
  CheckID: string;
  Name: string;
  Status: 'passing' | 'warning' | 'critical' | string;
  Notes?: string;
  Output?: string;
  ServiceID: string;
  ServiceName: string;
  Type?: string;
}

export interface ServiceEntry {
  Node: { Node: string; Address: string; Datacenter?: string; Meta?: Record<string, string> };
  Service: {
    ID: string;
    Service: string;
    Tags: string[] | null;
    Address: string;
    Port: number;
    Meta?: Record<string, string> | null;
  };
  Checks: Check[];
}

export type Status = 'passing' | 'warning' | 'critical';

const RANK: Record<string, number> = { passing: 0, warning: 1, critical: 2 };

/** The worst of some checks' statuses (no checks: passing, as Consul's health filter). */
export function worst(checks: Check[]): Status {
  let w = 0;
  for (const c of checks) w = Math.max(w, RANK[c.Status] ?? 2);
  return (['passing', 'warning', 'critical'] as Status[])[w];
}

export function countBy(checks: Check[]): Record<Status, number> {
  const n: Record<Status, number> = { passing: 0, warning: 0, critical: 0 };
  for (const c of checks) {
    const s = (c.Status in RANK ? c.Status : 'critical') as Status;
    n[s]++;
  }
  return n;
}

/** A KV key or prefix as a URL path (each segment escaped, the slashes kept). */
export function keyPath(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}
