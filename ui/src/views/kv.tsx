// Key/Value: browse folders (`?keys&separator=/`), view a key, create (`?cas=0`: only if
// absent), edit with check-and-set on the ModifyIndex read, delete (a key with `?cas=`, a
// folder with `?recurse`). Values are bytes: UTF-8 text is edited as text, anything else
// as base64, and what is saved is exactly the bytes shown.
import { useEffect, useState } from 'preact/hooks';
import { call, keyPath, useWatch } from '../api';
import { href, navigate } from '../router';
import { Status } from './common';

interface KvPair {
  Key: string;
  Value: string | null;
  Flags: number;
  CreateIndex: number;
  ModifyIndex: number;
  LockIndex: number;
  Session?: string;
}

function fromBase64(b64: string | null): Uint8Array {
  const s = atob(b64 ?? '');
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** The bytes as text when they are valid UTF-8, else `null`. */
function asText(bytes: Uint8Array): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

type Mode = 'text' | 'base64';

/** The bytes an editor's content stands for, or an error naming what is wrong. */
function encode(content: string, mode: Mode): Uint8Array | string {
  if (mode === 'text') return new TextEncoder().encode(content);
  try {
    return fromBase64(content.replace(/\s+/g, ''));
  } catch {
    return 'the value is not valid base64';
  }
}

export function Kv({ dc, rest }: { dc: string; rest: string }) {
  const key = rest.split('/').map(decodeURIComponent).join('/');
  return key === '' || key.endsWith('/') ? <Folder dc={dc} prefix={key} /> : <Key dc={dc} k={key} />;
}

function Crumbs({ dc, k }: { dc: string; k: string }) {
  const parts = k.split('/').filter((p, i, a) => p !== '' || i < a.length - 1);
  const folders = k.endsWith('/') ? parts : parts.slice(0, -1);
  let acc = '';
  return (
    <p class="crumbs">
      <a href={href(dc, 'kv')}>Key/Value</a> /{' '}
      {folders.map((p) => {
        acc += `${p}/`;
        return (
          <span key={acc}>
            <a href={href(dc, 'kv', keyPath(acc))}>{p}</a> /{' '}
          </span>
        );
      })}
    </p>
  );
}

function Folder({ dc, prefix }: { dc: string; prefix: string }) {
  const w = useWatch<string[] | null>(`/v1/kv/${keyPath(prefix)}?keys&separator=/`, dc);
  const keys = (w.data ?? []).filter((k) => k !== prefix);
  const [name, setName] = useState('');
  const [value, setValue] = useState('');
  const [mode, setMode] = useState<Mode>('text');
  const [msg, setMsg] = useState<string>();
  const create = async (e: Event) => {
    e.preventDefault();
    if (!name.trim()) return setMsg('name: give the key a name');
    const full = prefix + name.trim();
    const bytes = full.endsWith('/') ? new Uint8Array() : encode(value, mode);
    if (typeof bytes === 'string') return setMsg(bytes);
    try {
      const r = await call<boolean>(`/v1/kv/${keyPath(full)}?cas=0`, { dc, method: 'PUT', body: bytes as BodyInit });
      if (r.data !== true) return setMsg(`${full} already exists`);
      setMsg(undefined);
      setName('');
      setValue('');
      if (!full.endsWith('/')) navigate(href(dc, 'kv', keyPath(full)));
    } catch (err) {
      setMsg(String((err as Error).message));
    }
  };
  const removeFolder = async () => {
    if (!confirm(`Delete ${prefix} and every key under it?`)) return;
    try {
      await call(`/v1/kv/${keyPath(prefix)}?recurse`, { dc, method: 'DELETE' });
      const up = prefix.slice(0, -1).lastIndexOf('/');
      navigate(href(dc, 'kv', keyPath(prefix.slice(0, up + 1))));
    } catch (err) {
      setMsg(String((err as Error).message));
    }
  };
  return (
    <main class="view">
      <Crumbs dc={dc} k={prefix} />
      <h1>
        {prefix || 'Key/Value'} <span class="muted">in {dc}</span>
      </h1>
      <Status loading={w.loading} error={w.error} empty={!w.loading && keys.length === 0} />
      {keys.length > 0 && (
        <ul class="kv-list">
          {keys.map((k) => (
            <li key={k} class={k.endsWith('/') ? 'folder' : 'key'} data-key={k}>
              <a href={href(dc, 'kv', keyPath(k))}>{k.slice(prefix.length).replace(/\/$/, '')}</a>
            </li>
          ))}
        </ul>
      )}
      {prefix && (
        <button class="danger" onClick={removeFolder}>
          Delete folder
        </button>
      )}
      <form class="card editor" onSubmit={create} aria-label="Create a key">
        <h2>Create</h2>
        <label>
          Key <span class="muted">(under {prefix || 'the root'}; end with / for a folder)</span>
          <input name="key" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </label>
        <ModeSwitch mode={mode} setMode={setMode} />
        <textarea name="value" rows={5} value={value} onInput={(e) => setValue((e.target as HTMLTextAreaElement).value)} />
        {msg && <p class="error">{msg}</p>}
        <button type="submit">Create</button>
      </form>
    </main>
  );
}

function ModeSwitch({ mode, setMode }: { mode: Mode; setMode: (m: Mode) => void }) {
  return (
    <div class="mode">
      <label>
        <input type="radio" checked={mode === 'text'} onChange={() => setMode('text')} /> Text
      </label>
      <label>
        <input type="radio" checked={mode === 'base64'} onChange={() => setMode('base64')} /> Base64 (binary)
      </label>
    </div>
  );
}

function Key({ dc, k }: { dc: string; k: string }) {
  const w = useWatch<KvPair[] | null>(`/v1/kv/${keyPath(k)}`, dc);
  const pair = w.data?.[0];
  const bytes = pair ? fromBase64(pair.Value) : undefined;
  const text = bytes ? asText(bytes) : null;
  const [mode, setMode] = useState<Mode>('text');
  const [content, setContent] = useState('');
  const [base, setBase] = useState<number>();
  const [dirty, setDirty] = useState(false);
  const [msg, setMsg] = useState<string>();
  // Load what the server has unless the user is in the middle of an edit.
  useEffect(() => {
    if (!pair || !bytes || dirty) return;
    const m: Mode = text === null ? 'base64' : mode;
    setMode(m);
    setContent(m === 'text' ? (text ?? '') : toBase64(bytes));
    setBase(pair.ModifyIndex);
  }, [pair?.ModifyIndex]);
  const switchMode = (m: Mode) => {
    const b = encode(content, mode);
    if (typeof b === 'string') return setMsg(b);
    if (m === 'text' && asText(b) === null) return setMsg('the value is not UTF-8 text: edit it as base64');
    setMode(m);
    setContent(m === 'text' ? (asText(b) ?? '') : toBase64(b));
  };
  const save = async (e: Event) => {
    e.preventDefault();
    const b = encode(content, mode);
    if (typeof b === 'string') return setMsg(b);
    try {
      const r = await call<boolean>(`/v1/kv/${keyPath(k)}?cas=${base ?? 0}`, { dc, method: 'PUT', body: b as BodyInit });
      if (r.data !== true) {
        return setMsg('Not saved: the key changed since it was loaded (check-and-set failed). Reload to see it.');
      }
      setMsg('Saved.');
      setDirty(false);
    } catch (err) {
      setMsg(String((err as Error).message));
    }
  };
  const reload = () => {
    setDirty(false);
    if (pair && bytes) {
      const m: Mode = text === null ? 'base64' : mode;
      setMode(m);
      setContent(m === 'text' ? (text ?? '') : toBase64(bytes));
      setBase(pair.ModifyIndex);
      setMsg(undefined);
    }
  };
  const remove = async () => {
    if (!confirm(`Delete ${k}?`)) return;
    try {
      const r = await call<boolean>(`/v1/kv/${keyPath(k)}?cas=${base ?? 0}`, { dc, method: 'DELETE' });
      if (r.data !== true) return setMsg('Not deleted: the key changed since it was loaded.');
      navigate(href(dc, 'kv', keyPath(k.slice(0, k.lastIndexOf('/') + 1))));
    } catch (err) {
      setMsg(String((err as Error).message));
    }
  };
  const changedUnderneath = dirty && pair && base !== undefined && pair.ModifyIndex !== base;
  return (
    <main class="view">
      <Crumbs dc={dc} k={k} />
      <h1>{k}</h1>
      <Status loading={w.loading} error={w.error} />
      {!w.loading && !pair && !w.error && <p class="error">No such key in {dc}.</p>}
      {pair && bytes && (
        <form class="card editor" onSubmit={save} aria-label="Edit the key">
          <p class="muted">
            {bytes.length} bytes{text === null ? ' (binary)' : ''} · flags {pair.Flags} · modify index {pair.ModifyIndex}
            {pair.Session ? ` · locked by session ${pair.Session}` : ''}
          </p>
          {changedUnderneath && (
            <p class="error">
              Changed on the server since you started editing.{' '}
              <button type="button" onClick={reload}>
                Load the new value
              </button>
            </p>
          )}
          <ModeSwitch mode={mode} setMode={switchMode} />
          <textarea
            name="value"
            rows={10}
            value={content}
            onInput={(e) => {
              setContent((e.target as HTMLTextAreaElement).value);
              setDirty(true);
            }}
          />
          {msg && <p class={msg === 'Saved.' ? 'ok' : 'error'}>{msg}</p>}
          <div class="buttons">
            <button type="submit">Save</button>
            <button type="button" class="danger" onClick={remove}>
              Delete
            </button>
          </div>
        </form>
      )}
    </main>
  );
}
