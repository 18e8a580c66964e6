// Federation: every datacenter as this one's gateways see it: gateways alive, WAN round
// trip, last contact, the circuit breaker and the read-only catalog copy.
import { useEffect, useState } from 'preact/hooks';
import { call } from '../api';
import { href } from '../router';
import { Badge, Status } from './common';

interface FedDc {
  Name: string;
  RTTMs: number | null;
  GatewaysAlive: number;
  Gateways: number;
  Breaker?: string;
  LastContact?: string | null;
  LastError?: { At: string; Error: string } | null;
  RequestP50Ms?: number | null;
  Copy?: { Index: number; Bytes: number; AgeMs: number } | null;
}

interface FedView {
  Datacenter: string;
  Datacenters: FedDc[];
}

// /v1/operator/federation has no index to block on (it is the gateways' live view), so
// this view alone re-reads on a timer, and only while it is open.
const REFRESH_MS = 5000;

export function Federation({ dc }: { dc: string }) {
  const [view, setView] = useState<FedView>();
  const [err, setErr] = useState<string>();
  const [dcs, setDcs] = useState<string[]>();
  useEffect(() => {
    let stop = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = async () => {
      try {
        const [f, d] = await Promise.all([
          call<FedView>('/v1/operator/federation', { dc }),
          call<string[]>('/v1/catalog/datacenters'),
        ]);
        if (stop) return;
        setView(f.data);
        setDcs(d.data);
        setErr(undefined);
      } catch (e) {
        if (!stop) setErr(String((e as Error).message));
      }
      if (!stop) timer = setTimeout(load, REFRESH_MS);
    };
    load();
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, [dc]);
  const seen = new Set((view?.Datacenters ?? []).map((d) => d.Name));
  const unseen = (dcs ?? []).filter((d) => !seen.has(d));
  return (
    <main class="view">
      <h1>
        Federation <span class="muted">as {view?.Datacenter ?? dc} sees it</span>
      </h1>
      <p class="muted">Re-read every {REFRESH_MS / 1000} s while open (this endpoint has no index to block on).</p>
      <Status loading={!view && !err} error={err} />
      {view && (
        <table>
          <thead>
            <tr>
              <th>Datacenter</th>
              <th>Gateways</th>
              <th>WAN RTT</th>
              <th>Last contact</th>
              <th>Breaker</th>
              <th>Last error</th>
              <th>Catalog copy</th>
            </tr>
          </thead>
          <tbody>
            {view.Datacenters.map((d) => (
              <tr key={d.Name} data-dc={d.Name}>
                <td>
                  <a href={href(d.Name, 'services')}>{d.Name}</a>
                  {d.Name === view.Datacenter && <span class="muted"> (this one)</span>}
                </td>
                <td>
                  <Badge status={d.GatewaysAlive > 0 ? 'passing' : d.Gateways > 0 ? 'critical' : 'warning'}>
                    {d.GatewaysAlive}/{d.Gateways} alive
                  </Badge>
                </td>
                <td>{d.RTTMs == null ? '—' : `${d.RTTMs.toFixed(1)} ms`}</td>
                <td>{d.Name === view.Datacenter ? '—' : d.LastContact ?? 'never'}</td>
                <td>{d.Breaker ?? '—'}</td>
                <td class="error">{d.LastError ? `${d.LastError.At}: ${d.LastError.Error}` : ''}</td>
                <td>{d.Copy ? `index ${d.Copy.Index}, ${(d.Copy.AgeMs / 1000).toFixed(0)} s old` : '—'}</td>
              </tr>
            ))}
            {unseen.map((d) => (
              <tr key={d} data-dc={d}>
                <td>
                  <a href={href(d, 'services')}>{d}</a>
                </td>
                <td colSpan={6} class="muted">
                  {d === (view.Datacenter ?? dc)
                    ? 'this datacenter: no WAN gateway has joined it (not federated)'
                    : "in the catalog's list, but no gateway reports it"}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}
