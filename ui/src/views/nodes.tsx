// Nodes: each node's health, gossip status (this agent's LAN pool) and round trip from
// this agent (Vivaldi coordinates), and one node's checks and services.
import { useEffect, useState } from 'preact/hooks';
import { call, countBy, useFetch, useWatch, worst } from '../api';
import type { Check } from '../api';
import { href } from '../router';
import { Badge, Checks, Counts, Status } from './common';

interface CatalogNode {
  Node: string;
  Address: string;
  Datacenter: string;
}

interface Member {
  Name: string;
  Addr: string;
  Status: number;
}

interface Coord {
  Node: string;
  Coord: { Vec: number[]; Error: number; Adjustment: number; Height: number };
}

const GOSSIP: Record<number, string> = { 0: 'none', 1: 'alive', 2: 'leaving', 3: 'left', 4: 'failed' };

/** Estimated round trip in ms between two Vivaldi coordinates (Consul's formula). */
function rttMs(a: Coord['Coord'], b: Coord['Coord']): number {
  let sum = 0;
  for (let i = 0; i < Math.min(a.Vec.length, b.Vec.length); i++) sum += (a.Vec[i] - b.Vec[i]) ** 2;
  const dist = Math.sqrt(sum) + a.Height + b.Height;
  const adjusted = dist + a.Adjustment + b.Adjustment;
  return (adjusted > 0 ? adjusted : dist) * 1000;
}

function useSelf() {
  return useFetch<{ Config: { Datacenter: string; NodeName: string } }>('/v1/agent/self', undefined, []);
}

export function Nodes({ dc }: { dc: string }) {
  const nodes = useWatch<CatalogNode[]>('/v1/catalog/nodes', dc);
  const checks = useWatch<Check[]>('/v1/health/state/any', dc);
  const coords = useWatch<Coord[]>('/v1/coordinate/nodes', dc);
  const self = useSelf();
  const local = self.data?.Config.Datacenter === dc;
  // Gossip has no index to block on; the serfHealth check moves when a member's status
  // does, so the members are read again whenever the checks change.
  const [members, setMembers] = useState<Record<string, Member>>({});
  useEffect(() => {
    if (!local) return;
    call<Member[]>('/v1/agent/members')
      .then((a) => setMembers(Object.fromEntries((a.data ?? []).map((m) => [m.Name, m]))))
      .catch(() => setMembers({}));
  }, [local, checks.index]);
  const byNode: Record<string, Check[]> = {};
  for (const c of checks.data ?? []) (byNode[c.Node] ??= []).push(c);
  const me = coords.data?.find((c) => c.Node === self.data?.Config.NodeName);
  const list = nodes.data ?? [];
  return (
    <main class="view">
      <h1>
        Nodes <span class="muted">in {dc}</span>
      </h1>
      <Status loading={nodes.loading} error={nodes.error} empty={!nodes.loading && list.length === 0} />
      {list.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>Node</th>
              <th>Health</th>
              <th>Address</th>
              <th>Gossip</th>
              <th>RTT from {self.data?.Config.NodeName ?? 'this agent'}</th>
              <th>Checks</th>
            </tr>
          </thead>
          <tbody>
            {list.map((n) => {
              const cs = byNode[n.Node] ?? [];
              const c = coords.data?.find((x) => x.Node === n.Node);
              const m = members[n.Node];
              return (
                <tr key={n.Node} data-node={n.Node}>
                  <td>
                    <a href={href(dc, 'nodes', encodeURIComponent(n.Node))}>{n.Node}</a>
                  </td>
                  <td>
                    <Badge status={worst(cs)} />
                  </td>
                  <td>{n.Address}</td>
                  <td>{local ? (m ? GOSSIP[m.Status] ?? m.Status : 'not a member') : <span class="muted">other DC</span>}</td>
                  <td>{me && c ? `${rttMs(me.Coord, c.Coord).toFixed(2)} ms` : <span class="muted">n/a</span>}</td>
                  <td>
                    <Counts n={countBy(cs)} />
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

interface NodeServices {
  Node: CatalogNode & { Meta?: Record<string, string> };
  Services: Record<string, { ID: string; Service: string; Port: number; Tags: string[] | null }>;
}

export function NodeDetail({ dc, node }: { dc: string; node: string }) {
  const checks = useWatch<Check[]>(`/v1/health/node/${encodeURIComponent(node)}`, dc);
  const info = useWatch<NodeServices | null>(`/v1/catalog/node/${encodeURIComponent(node)}`, dc);
  const services = Object.values(info.data?.Services ?? {});
  return (
    <main class="view">
      <p class="crumbs">
        <a href={href(dc, 'nodes')}>Nodes</a> /
      </p>
      <h1>
        {node} <span class="muted">{info.data?.Node.Address}</span>
      </h1>
      <Status loading={info.loading} error={info.error ?? checks.error} />
      {!info.loading && info.data === null && <p class="error">No such node in {dc}.</p>}
      <h2>Checks</h2>
      <Checks checks={checks.data ?? []} />
      <h2>Services</h2>
      {services.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <ul>
          {services.map((s) => (
            <li key={s.ID}>
              <a href={href(dc, 'services', encodeURIComponent(s.Service))}>{s.Service}</a>{' '}
              <span class="muted">
                {s.ID}
                {s.Port ? ` :${s.Port}` : ''}
              </span>
            </li>
          ))}
        </ul>
      )}
      {info.data?.Node.Meta && Object.keys(info.data.Node.Meta).length > 0 && (
        <>
          <h2>Metadata</h2>
          <dl>
            {Object.entries(info.data.Node.Meta).map(([k, v]) => (
              <>
                <dt>{k}</dt>
                <dd>{v}</dd>
              </>
            ))}
          </dl>
        </>
      )}
    </main>
  );
}
