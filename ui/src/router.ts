// Client-side routes under the UI's base path (ui_config.content_path, read from the
// <meta name="meridian-ui-base"> the agent writes into index.html): `{base}{dc}/{section}/...`.
import { useEffect, useState } from 'preact/hooks';

export const BASE: string = (() => {
  const m = document.querySelector('meta[name="meridian-ui-base"]');
  const b = m?.getAttribute('content') ?? '/ui/';
  // The unrewritten placeholder (vite's dev server): serve from the root.
  return b.includes('__MERIDIAN_UI__') ? '/' : b.endsWith('/') ? b : `${b}/`;
})();

export interface Route {
  dc: string;
  section: string;
  /** The rest of the path after the section, still URL-escaped ('' when none). */
  rest: string;
}

export function parse(pathname: string): Route | null {
  if (!pathname.startsWith(BASE)) return null;
  const tail = pathname.slice(BASE.length);
  const [dc, section, ...rest] = tail.split('/');
  if (!dc) return null;
  return { dc: decodeURIComponent(dc), section: section || 'services', rest: rest.join('/') };
}

export function href(dc: string, section: string, rest = ''): string {
  return `${BASE}${encodeURIComponent(dc)}/${section}${rest ? `/${rest}` : ''}`;
}

export function navigate(url: string, replace = false): void {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  dispatchEvent(new PopStateEvent('popstate'));
}

export function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const on = () => setPath(location.pathname);
    addEventListener('popstate', on);
    return () => removeEventListener('popstate', on);
  }, []);
  return path;
}

/** Same-page navigation for plain left clicks on links; others (new tab) go to the browser. */
export function onLink(e: MouseEvent): void {
  const a = (e.target as HTMLElement).closest('a');
  if (!a || a.target || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith(BASE)) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
}
