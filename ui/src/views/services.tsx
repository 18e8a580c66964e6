// Services: the list with a health summary per service, one service's instances with
// their checks, and one service across every datacenter.
import { useEffect, useState } from 'preact/hooks';
import { call, countBy, useFetch, useWatch, worst } from '../api';
import type { Check, ServiceEntry, Status as Health } from '../api';
import { href } from '../router';
import { Badge, Checks, Counts, Status } from './common';

interface Summary {
  name: string;
  tags: string[];
  instances: number;
  byInstance: Record<Health, number>;
  checks: Record<Health, number>;
}

function summarize(name: string, tags: string[], entries: ServiceEntry[]): Summary {
  const byInstance: Record<Health, number> = { passing: 0, warning: 0, critical: 0 };
  const all: Check[] = [];
  for (const e of entries) {
    byInstance[worst(e.Checks)]++;
    all.push(...e.Checks);
  }
  return { name, tags, instances: entries.length, byInstance, checks: countBy(all) };
}

export function Services({ dc }: { dc: string }) {
  // Two blocking queries: the service names, and every check (any status change). When
  // either moves, the instances of each service are read again.
  const names = useWatch<Record<string, string[]>>('/v1/catalog/services', dc);
  const checks = useWatch<Check[]>('/v1/health/state/any', dc);
  const [rows, setRows] = useState<Summary[]>();
  const [err, setErr] = useState<string>();
  const [filter, setFilter] = useState('');
  useEffect(() => {
    if (!names.data) return;
    const ctl = new AbortController();
    const list = Object.entries(names.data).sort(([a], [b]) => a.localeCompare(b));
    Promise.all(
      list.map(async ([name, tags]) => {
        const a = await call<ServiceEntry[]>(`/v1/health/service/${encodeURIComponent(name)}`, {
          dc,
          signal: ctl.signal,
        });
        return summarize(name, tags ?? [], a.data ?? []);
      }),
    )
      .then((r) => {
        setRows(r);
        setErr(undefined);
      })
      .catch((e) => !ctl.signal.aborted && setErr(String(e.message ?? e)));
    return () => ctl.abort();
  }, [names.data, checks.index, dc]);

  const shown = (rows ?? []).filter((r) => r.name.includes(filter) || r.tags.some((t) => t.includes(filter)));
  return (
    <main class="view">
      <h1>
        Services <span class="muted">in {dc}</span>
      </h1>
      <input
        class="filter"
        placeholder="Filter by name or tag"
        value={filter}
        onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
      />
      <Status loading={!rows && !names.error} error={names.error ?? err} empty={rows?.length === 0} />
      {rows && rows.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>Service</th>
              <th>Health</th>
              <th>Instances</th>
              <th>Checks</th>
              <th>Tags</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((r) => {
              const health: Health = r.byInstance.critical ? 'critical' : r.byInstance.warning ? 'warning' : 'passing';
              return (
                <tr key={r.name} data-service={r.name} data-health={health}>
                  <td>
                    <a href={href(dc, 'services', encodeURIComponent(r.name))}>{r.name}</a>
                  </td>
                  <td>
                    <Badge status={health} />
                  </td>
                  <td>
                    {r.instances}
                    {r.instances > 0 && r.byInstance.passing !== r.instances && (
                      <span class="muted"> ({r.byInstance.passing} passing)</span>
                    )}
                  </td>
                  <td>
                    <Counts n={r.checks} />
                  </td>
                  <td>
                    {r.tags.map((t) => (
                      <span key={t} class="tag">
                        {t}
                      </span>
                    ))}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </main>
  );
}

export function ServiceDetail({ dc, rest }: { dc: string; rest: string }) {
  const [nameEnc, tab] = rest.split('/');
  const name = decodeURIComponent(nameEnc);
  return (
    <main class="view">
      <p class="crumbs">
        <a href={href(dc, 'services')}>Services</a> /
      </p>
      <h1>{name}</h1>
      <div class="tabs">
        <a href={href(dc, 'services', nameEnc)} class={tab ? '' : 'active'}>
          Instances in {dc}
        </a>
        <a href={href(dc, 'services', `${nameEnc}/datacenters`)} class={tab === 'datacenters' ? 'active' : ''}>
          All datacenters
        </a>
      </div>
      {tab === 'datacenters' ? <AcrossDcs dc={dc} name={name} /> : <Instances dc={dc} name={name} />}
    </main>
  );
}

function Instances({ dc, name }: { dc: string; name: string }) {
  const w = useWatch<ServiceEntry[]>(`/v1/health/service/${encodeURIComponent(name)}`, dc);
  const list = w.data ?? [];
  return (
    <>
      <Status loading={w.loading} error={w.error} empty={!w.loading && list.length === 0} />
      {list.map((e) => (
        <section
          key={`${e.Node.Node}/${e.Service.ID}`}
          class="card"
          data-instance={e.Service.ID}
          data-health={worst(e.Checks)}
        >
          <h2>
            <Badge status={worst(e.Checks)} /> {e.Service.ID}{' '}
            <span class="muted">
              on <a href={href(dc, 'nodes', encodeURIComponent(e.Node.Node))}>{e.Node.Node}</a> ·{' '}
              {e.Service.Address || e.Node.Address}
              {e.Service.Port ? `:${e.Service.Port}` : ''}
            </span>
          </h2>
          {(e.Service.Tags ?? []).map((t) => (
            <span key={t} class="tag">
              {t}
            </span>
          ))}
          <Checks checks={e.Checks} />
        </section>
      ))}
    </>
  );
}

function AcrossDcs({ dc, name }: { dc: string; name: string }) {
  const dcs = useFetch<string[]>('/v1/catalog/datacenters', undefined, []);
  return (
    <>
      <Status loading={dcs.loading} error={dcs.error} />
      <table>
        <thead>
          <tr>
            <th>Datacenter</th>
            <th>Health</th>
            <th>Instances</th>
            <th>Checks</th>
          </tr>
        </thead>
        <tbody>
          {(dcs.data ?? []).map((d) => (
            <DcRow key={d} dc={d} current={dc} name={name} />
          ))}
        </tbody>
      </table>
    </>
  );
}

function DcRow({ dc, current, name }: { dc: string; current: string; name: string }) {
  // A 30 s wait: with many datacenters these share the browser's few connections in turn.
  const w = useWatch<ServiceEntry[]>(`/v1/health/service/${encodeURIComponent(name)}`, dc, '30s');
  const s = w.data ? summarize(name, [], w.data) : undefined;
  const health: Health | 'none' = !s || s.instances === 0 ? 'none' : s.byInstance.critical ? 'critical' : s.byInstance.warning ? 'warning' : 'passing';
  return (
    <tr data-dc={dc}>
      <td>
        <a href={href(dc, 'services', encodeURIComponent(name))}>{dc}</a>
        {dc === current && <span class="muted"> (this one)</span>}
      </td>
      <td>{w.error ? <span class="error">{w.error}</span> : s ? <Badge status={health} /> : '…'}</td>
      <td>{s?.instances ?? ''}</td>
      <td>{s && <Counts n={s.checks} />}</td>
    </tr>
  );
}
