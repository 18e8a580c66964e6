// Small pieces the views share: status badges, check lists, loading and error lines.
import type { ComponentChildren } from 'preact';
import type { Check, Status } from '../api';

export function Badge({ status, children }: { status: Status | string; children?: ComponentChildren }) {
  return (
    <span class={`badge ${status}`} data-status={status}>
      {children ?? status}
    </span>
  );
}

export function Counts({ n }: { n: Record<Status, number> }) {
  return (
    <span class="counts">
      {(['passing', 'warning', 'critical'] as Status[]).map((s) =>
        n[s] ? (
          <Badge key={s} status={s}>
            {n[s]} {s}
          </Badge>
        ) : null,
      )}
    </span>
  );
}

export function Checks({ checks }: { checks: Check[] }) {
  if (!checks.length) return <p class="muted">No checks.</p>;
  return (
    <ul class="checks">
      {checks.map((c) => (
        <li key={`${c.Node}/${c.CheckID}`} class="check" data-check={c.CheckID}>
          <Badge status={c.Status} /> <strong>{c.Name}</strong>{' '}
          <span class="muted">
            {c.CheckID}
            {c.ServiceID ? '' : ' (node)'}
            {c.Type ? ` · ${c.Type}` : ''}
          </span>
          {c.Notes && <div class="muted">{c.Notes}</div>}
          {c.Output && <pre class="output">{c.Output}</pre>}
        </li>
      ))}
    </ul>
  );
}

export function Status({ loading, error, empty }: { loading: boolean; error?: string; empty?: boolean }) {
  if (error) return <p class="error">{error}</p>;
  if (loading) return <p class="muted">Loading…</p>;
  if (empty) return <p class="muted">Nothing here yet.</p>;
  return null;
}
