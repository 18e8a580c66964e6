// The shell: header (datacenter switcher, sections, ACL token) and the view for the URL.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { call, getToken, setToken, useFetch } from './api';
import { BASE, href, navigate, onLink, parse, usePath } from './router';
import { Services, ServiceDetail } from './views/services';
import { Nodes, NodeDetail } from './views/nodes';
import { Kv } from './views/kv';
import { Sessions } from './views/sessions';
import { Federation } from './views/federation';
import './style.css';

const SECTIONS: Array<[string, string]> = [
  ['services', 'Services'],
  ['nodes', 'Nodes'],
  ['kv', 'Key/Value'],
  ['sessions', 'Sessions'],
  ['federation', 'Federation'],
];

function TokenField() {
  const [value, setValue] = useState(getToken());
  const [saved, setSaved] = useState(getToken());
  return (
    <form
      class="token"
      onSubmit={(e) => {
        e.preventDefault();
        setToken(value.trim());
        setSaved(value.trim());
        location.reload();
      }}
    >
      <input
        type="password"
        placeholder="ACL token"
        aria-label="ACL token"
        value={value}
        onInput={(e) => setValue((e.target as HTMLInputElement).value)}
      />
      <button type="submit">{value.trim() === saved ? (saved ? 'Token set' : 'Use token') : 'Save token'}</button>
    </form>
  );
}

function DcSwitcher({ dc, section }: { dc: string; section: string }) {
  // Re-read when the page changes datacenter, so a newly federated one shows up.
  const dcs = useFetch<string[]>('/v1/catalog/datacenters', undefined, [dc]);
  const list = dcs.data ?? [dc];
  const all = list.includes(dc) ? list : [dc, ...list];
  return (
    <label class="dc">
      <span>Datacenter</span>
      <select
        aria-label="Datacenter"
        value={dc}
        onChange={(e) => navigate(href((e.target as HTMLSelectElement).value, section))}
      >
        {all.map((d) => (
          <option key={d} value={d}>
            {d}
          </option>
        ))}
      </select>
    </label>
  );
}

/** `{base}` with no datacenter: go to this agent's own datacenter's services. */
function Home() {
  const [err, setErr] = useState<string>();
  useEffect(() => {
    (async () => {
      try {
        const self = await call<{ Config: { Datacenter: string } }>('/v1/agent/self');
        navigate(href(self.data.Config.Datacenter, 'services'), true);
      } catch {
        try {
          // Without agent:read: the nearest datacenter comes first.
          const dcs = await call<string[]>('/v1/catalog/datacenters');
          navigate(href(dcs.data[0] ?? 'dc1', 'services'), true);
        } catch (e) {
          setErr(String((e as Error).message));
        }
      }
    })();
  }, []);
  return <main class="view">{err ? <p class="error">{err}</p> : <p class="muted">Loading…</p>}</main>;
}

function View({ dc, section, rest }: { dc: string; section: string; rest: string }) {
  switch (section) {
    case 'services':
      return rest ? <ServiceDetail dc={dc} rest={rest} /> : <Services dc={dc} />;
    case 'nodes':
      return rest ? <NodeDetail dc={dc} node={decodeURIComponent(rest)} /> : <Nodes dc={dc} />;
    case 'kv':
      return <Kv dc={dc} rest={rest} />;
    case 'sessions':
      return <Sessions dc={dc} />;
    case 'federation':
      return <Federation dc={dc} />;
    default:
      return (
        <main class="view">
          <p class="error">No such page: {section}</p>
        </main>
      );
  }
}

function App() {
  const path = usePath();
  const route = parse(path);
  useEffect(() => {
    document.title = route ? `${route.section} · ${route.dc} · Meridian` : 'Meridian';
  }, [path]);
  return (
    <div onClick={(e) => onLink(e as unknown as MouseEvent)}>
      <header class="top">
        <a class="brand" href={BASE}>
          Meridian
        </a>
        {route && <DcSwitcher dc={route.dc} section={route.section} />}
        {route && (
          <nav>
            {SECTIONS.map(([s, label]) => (
              <a key={s} href={href(route.dc, s)} class={route.section === s ? 'active' : ''}>
                {label}
              </a>
            ))}
          </nav>
        )}
        <TokenField />
      </header>
      {route ? <View key={`${route.dc}/${route.section}`} {...route} /> : <Home />}
    </div>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
