// Sessions: every session in the datacenter, live, with a button to destroy one.
import { useState } from 'preact/hooks';
import { call, useWatch } from '../api';
import { href } from '../router';
import { Status } from './common';

interface Session {
  ID: string;
  Name: string;
  Node: string;
  Behavior: string;
  TTL: string;
  LockDelay: number;
  NodeChecks?: string[] | null;
  ServiceChecks?: Array<{ ID: string }> | null;
  CreateIndex: number;
}

export function Sessions({ dc }: { dc: string }) {
  const w = useWatch<Session[]>('/v1/session/list', dc);
  const [err, setErr] = useState<string>();
  const list = w.data ?? [];
  const destroy = async (id: string) => {
    try {
      await call(`/v1/session/destroy/${encodeURIComponent(id)}`, { dc, method: 'PUT' });
      setErr(undefined);
    } catch (e) {
      setErr(String((e as Error).message));
    }
  };
  return (
    <main class="view">
      <h1>
        Sessions <span class="muted">in {dc}</span>
      </h1>
      {err && <p class="error">{err}</p>}
      <Status loading={w.loading} error={w.error} empty={!w.loading && list.length === 0} />
      {list.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>ID</th>
              <th>Name</th>
              <th>Node</th>
              <th>Behavior</th>
              <th>TTL</th>
              <th>Lock delay</th>
              <th>Checks</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.map((s) => (
              <tr key={s.ID} data-session={s.ID}>
                <td>
                  <code>{s.ID}</code>
                </td>
                <td>{s.Name}</td>
                <td>
                  <a href={href(dc, 'nodes', encodeURIComponent(s.Node))}>{s.Node}</a>
                </td>
                <td>{s.Behavior}</td>
                <td>{s.TTL || '—'}</td>
                <td>{(s.LockDelay / 1e9).toFixed(0)} s</td>
                <td>{[...(s.NodeChecks ?? []), ...(s.ServiceChecks ?? []).map((c) => c.ID)].join(', ')}</td>
                <td>
                  <button class="danger" onClick={() => confirm(`Destroy session ${s.ID}?`) && destroy(s.ID)}>
                    Destroy
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}
