// The web UI in a real browser: Debian's chromium (headless) driven by playwright-core,
// against a real `meridian agent -dev` this script starts on free ports. What a user
// would check: a registered service appears, a failing check turns it critical without a
// reload, KV create / edit (check-and-set) / delete round-trip, the datacenter switcher
// lists the datacenters, and the other views render their data.
//
//   node test/ui.test.mjs            MERIDIAN_BIN (default ../target/debug/meridian),
//                                    CHROMIUM (default: chromium on PATH),
//                                    SCREENSHOTS=dir to save a PNG of every view.
// Exits 0 with a printed reason when chromium is not installed (the test is skipped).
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const bin = process.env.MERIDIAN_BIN ?? join(root, 'target', 'debug', 'meridian');
const gatewayBin = join(dirname(bin), 'meridian-gateway');
const shots = process.env.SCREENSHOTS ? resolve(process.env.SCREENSHOTS) : null;
const DEADLINE_MS = 15000;

function findChromium() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
    } catch {
      // not this one
    }
  }
  return null;
}

/** Waits until `cond()` is truthy (it may be async), failing with `what` after the deadline. */
async function until(what, cond, ms = DEADLINE_MS) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      if (await cond()) return;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

/**
 * Starts `program args` (JSON logs) and resolves with the `fields` of its first log line
 * containing `marker` (the addresses it bound), or fails with its log after 30 s.
 */
function startProcess(program, args, marker) {
  const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const log = [];
  return new Promise((resolveFields, reject) => {
    const timer = setTimeout(() => reject(new Error(`${program} did not start:\n${log.join('\n')}`)), 30000);
    child.on('exit', (code) => reject(new Error(`${program} exited (${code}):\n${log.join('\n')}`)));
    for (const s of [child.stdout, child.stderr]) {
      createInterface({ input: s }).on('line', (line) => {
        log.push(line);
        if (!line.includes(marker)) return;
        try {
          const fields = JSON.parse(line).fields;
          clearTimeout(timer);
          resolveFields(fields);
        } catch {
          // not the JSON line
        }
      });
    }
  });
}

/** Every process this test started, stopped at the end. */
const children = [];

/** `meridian agent -dev` on free ports; resolves once it has a leader. */
async function startAgent(extra = []) {
  const args = ['agent', '-dev', '-log-json', ...extra];
  for (const f of ['-http-port', '-serf-lan-port', '-server-port', '-dns-port']) args.push(f, '0');
  const fields = await startProcess(bin, args, 'Meridian agent running');
  const url = `http://${fields.http}`;
  await until('a leader', async () => (await (await fetch(`${url}/v1/status/leader`)).json()) !== '');
  return { url, serf: fields.serf_lan };
}

/** `meridian-gateway` of `dc`, joined to its server's LAN pool and, optionally, another WAN. */
async function startGateway(dc, lanJoin, wanJoin) {
  const dir = mkdtempSync(join(tmpdir(), `meridian-ui-${dc}-`));
  dirs.push(dir);
  const args = ['-datacenter', dc, '-node', `gw-${dc}`, '-bind', '127.0.0.1', '-data-dir', dir];
  for (const f of ['-server-port', '-serf-lan-port', '-serf-wan-port']) args.push(f, '0');
  args.push('-retry-join', lanJoin, '-retry-interval', '200ms', '-log-json');
  if (wanJoin) args.push('-retry-join-wan', wanJoin);
  const fields = await startProcess(gatewayBin, args, 'gateway running');
  return { serfWan: fields.serf_wan };
}

const dirs = [];

async function api(url, path, method = 'GET', body) {
  const r = await fetch(`${url}${path}`, { method, body });
  const text = await r.text();
  if (!r.ok && r.status !== 404) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return { status: r.status, text, json: () => JSON.parse(text) };
}

async function main() {
  const chrome = findChromium();
  if (!chrome) {
    console.log('SKIP: ui browser test: chromium is not installed (apt-get install -y chromium)');
    return;
  }
  if (!existsSync(bin)) throw new Error(`${bin} not found: cargo build -p meridian-agent --bin meridian`);
  const started = Date.now();
  const browser = await chromium.launch({ executablePath: chrome, headless: true, args: ['--no-sandbox'] });
  try {
    const dc1 = await startAgent(['-node', 'ui-node']);
    await run(dc1.url, browser);
    await withAcls(browser);
    // scripts/test.sh builds meridian-gateway before this runs; alone, build it first.
    if (!existsSync(gatewayBin)) {
      throw new Error(`${gatewayBin} not found: cargo build -p meridian-gateway --bin meridian-gateway`);
    }
    await federated(dc1, browser);
  } finally {
    await browser.close();
    for (const c of children) c.kill('SIGTERM');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
  console.log(`ok: ui browser test (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

/**
 * ACLs on, default deny: without a token the services view says permission denied; the
 * token typed in the header is kept (localStorage) and sent, and the services appear.
 */
async function withAcls(browser) {
  step('ACLs');
  const dir = mkdtempSync(join(tmpdir(), 'meridian-ui-acl-'));
  dirs.push(dir);
  const token = '6d4c2e6b-2f0a-4f6e-9b8e-0c1d2e3f4a5b';
  const cfg = join(dir, 'acl.hcl');
  writeFileSync(cfg, `acl {\n enabled = true\n default_policy = "deny"\n tokens {\n initial_management = "${token}"\n }\n}\n`);
  const agent = await startAgent(['-node', 'acl-node', '-config-file', cfg]);
  const page = await browser.newPage();
  await page.goto(`${agent.url}/ui/dc1/services`);
  // Consul's list endpoints filter out what the token may not read (or answer 403).
  await page.getByText(/403|Nothing here yet/).first().waitFor({ timeout: DEADLINE_MS });
  assert.equal(await page.locator('tr[data-service="consul"]').count(), 0, 'nothing shown without a token');
  await page.fill('input[aria-label="ACL token"]', token);
  await page.click('form.token button');
  await page.locator('tr[data-service="consul"]').waitFor({ timeout: DEADLINE_MS });
  assert.equal(await page.evaluate(() => localStorage.getItem('meridian:token')), token);
  await page.close();
}

/**
 * A second datacenter (a -dev agent of dc2), federated through one gateway each as in the
 * README: dc2 appears in the switcher, and choosing it shows dc2's services through dc1's
 * agent (`?dc=dc2`); the federation view lists both with their gateways.
 */
async function federated(dc1, browser) {
  step('two datacenters');
  const dc2 = await startAgent(['-node', 'dc2-node', '-datacenter', 'dc2']);
  await api(dc2.url, '/v1/agent/service/register', 'PUT', JSON.stringify({ Name: 'api-dc2', Port: 9000 }));
  const g1 = await startGateway('dc1', dc1.serf);
  await startGateway('dc2', dc2.serf, g1.serfWan);
  await until('dc1 to see dc2', async () => (await api(dc1.url, '/v1/catalog/datacenters')).text === '["dc1","dc2"]', 30000);
  step('federated');
  const page = await browser.newPage({ viewport: { width: 1200, height: 700 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${dc1.url}/ui/dc1/services`);
  const select = page.locator('select[aria-label="Datacenter"]');
  await until('the switcher to list dc2', async () => (await select.locator('option').allInnerTexts()).includes('dc2'));
  await select.selectOption('dc2');
  await page.waitForURL(/\/ui\/dc2\/services$/);
  await page.locator('tr[data-service="api-dc2"]').waitFor({ timeout: DEADLINE_MS });
  await page.goto(`${dc1.url}/ui/dc1/federation`);
  await until('the federation view to show dc2 with its gateway', async () =>
    /1\/1 alive/.test(await page.locator('tr[data-dc="dc2"]').innerText()), 20000);
  await shot(page, 'federation');
  assert.deepEqual(errors, [], 'no script errors in the page');
  await page.close();
}

async function shot(page, name) {
  if (!shots) return;
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

const t0 = Date.now();
function step(what) {
  if (process.env.UI_TEST_VERBOSE) console.log(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);
}

async function run(url, browser) {
  step('agent and browser up');
  const page = await browser.newPage({ viewport: { width: 1200, height: 700 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // The agent's Content-Security-Policy must not block anything the UI itself does.
  page.on('console', (m) => /Content Security Policy/i.test(m.text()) && errors.push(m.text()));
  page.on('dialog', (d) => d.accept());

  // A service with a TTL check, passing.
  await api(url, '/v1/agent/service/register', 'PUT', JSON.stringify({
    Name: 'web', ID: 'web-1', Port: 8080, Tags: ['v1', 'primary'],
    Check: { CheckID: 'web-ttl', Name: 'web alive', TTL: '10m' },
  }));
  await api(url, '/v1/agent/service/register', 'PUT', JSON.stringify({ Name: 'db', ID: 'db-1', Port: 5432 }));
  await api(url, '/v1/agent/check/pass/web-ttl?note=serving', 'PUT');

  // `/` leads to the UI, which opens this datacenter's services.
  await page.goto(`${url}/`);
  await page.waitForURL(/\/ui\/dc1\/services$/, { timeout: DEADLINE_MS });
  const web = page.locator('tr[data-service="web"]');
  await web.waitFor({ timeout: DEADLINE_MS });
  await until('web to show passing', async () => (await web.getAttribute('data-health')) === 'passing');
  assert.match(await web.innerText(), /primary/, 'tags shown');
  await shot(page, 'services');

  step('A failing check t');
  // A failing check turns it critical in the open page: no reload (the marker survives).
  await page.evaluate(() => { window.__sameDocument = true; });
  await api(url, '/v1/agent/check/fail/web-ttl?note=connection%20refused', 'PUT');
  await until('web to turn critical', async () => (await web.getAttribute('data-health')) === 'critical');
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'updated without a reload');

  step('The instance view');
  // The instance view: its checks with their output.
  await web.locator('a').click();
  await page.waitForURL(/\/ui\/dc1\/services\/web$/);
  const inst = page.locator('[data-instance="web-1"]');
  await inst.waitFor({ timeout: DEADLINE_MS });
  await until('the check output', async () => (await inst.innerText()).includes('connection refused'));
  assert.equal(await inst.getAttribute('data-health'), 'critical');
  await shot(page, 'service');
  await page.getByRole('link', { name: 'All datacenters' }).click();
  await page.locator('tr[data-dc="dc1"]').waitFor({ timeout: DEADLINE_MS });
  await until('dc1 row to count 1 instance', async () => /critical/.test(await page.locator('tr[data-dc="dc1"]').innerText()));

  step('The switcher');
  // The switcher lists every datacenter from /v1/catalog/datacenters.
  const dcs = (await api(url, '/v1/catalog/datacenters')).json();
  const options = await page.locator('select[aria-label="Datacenter"] option').allInnerTexts();
  assert.deepEqual(options, dcs, 'switcher lists the datacenters');

  step('A shared link');
  // A shared link opens straight on its view (the server answers index.html for it).
  await page.goto(`${url}/ui/dc1/nodes`);
  const node = page.locator('tr[data-node="ui-node"]');
  await node.waitFor({ timeout: DEADLINE_MS });
  await until('gossip status alive', async () => /alive/.test(await node.innerText()));
  await shot(page, 'nodes');
  await node.locator('a').click();
  await page.getByRole('heading', { name: /ui-node/ }).waitFor({ timeout: DEADLINE_MS });
  await until('the node page lists web', async () => (await page.locator('main').innerText()).includes('web-1'));
  await shot(page, 'node');

  step('KV: create');
  // KV: create under a folder.
  await page.goto(`${url}/ui/dc1/kv/`);
  await page.locator('form[aria-label="Create a key"]').waitFor({ timeout: DEADLINE_MS });
  await page.fill('input[name="key"]', 'config/app/name');
  await page.fill('form[aria-label="Create a key"] textarea', 'first');
  await page.click('form[aria-label="Create a key"] button[type="submit"]');
  await page.waitForURL(/\/ui\/dc1\/kv\/config\/app\/name$/, { timeout: DEADLINE_MS });
  await until('the key to hold "first"', async () => (await api(url, '/v1/kv/config/app/name?raw')).text === 'first');
  const editor = page.locator('form[aria-label="Edit the key"] textarea');
  await until('the editor to show the value', async () => (await editor.inputValue()) === 'first');

  step('Edit, saved');
  // Edit, saved with check-and-set.
  await editor.fill('second');
  await page.click('form[aria-label="Edit the key"] button[type="submit"]');
  await until('the key to hold "second"', async () => (await api(url, '/v1/kv/config/app/name?raw')).text === 'second');
  await page.getByText('Saved.').waitFor({ timeout: DEADLINE_MS });

  step('Someone else');
  // Someone else writes while we edit: our save is refused, theirs is kept.
  await editor.fill('mine');
  await api(url, '/v1/kv/config/app/name', 'PUT', 'theirs');
  await page.click('form[aria-label="Edit the key"] button[type="submit"]');
  await page.getByText(/check-and-set failed/).waitFor({ timeout: DEADLINE_MS });
  assert.equal((await api(url, '/v1/kv/config/app/name?raw')).text, 'theirs', 'CAS kept the other write');
  await shot(page, 'kv-key');

  // The folder view lists it; a share link to the folder works.
  await page.goto(`${url}/ui/dc1/kv/config/app/`);
  await page.locator('li[data-key="config/app/name"]').waitFor({ timeout: DEADLINE_MS });
  await shot(page, 'kv');

  step('Binary values');
  // Binary values are shown and kept byte for byte.
  await api(url, '/v1/kv/bin/blob', 'PUT', new Uint8Array([0, 255, 1, 128]));
  await page.goto(`${url}/ui/dc1/kv/bin/blob`);
  await until('the binary value as base64', async () => (await editor.inputValue()) === 'AP8BgA==');
  await page.click('form[aria-label="Edit the key"] button[type="submit"]');
  await page.getByText('Saved.').waitFor({ timeout: DEADLINE_MS });
  const raw = new Uint8Array(await (await fetch(`${url}/v1/kv/bin/blob?raw`)).arrayBuffer());
  assert.deepEqual([...raw], [0, 255, 1, 128], 'saving a binary value keeps its bytes');

  step('Delete.');
  // Delete.
  await page.goto(`${url}/ui/dc1/kv/config/app/name`);
  await until('the editor', async () => (await editor.inputValue()) === 'theirs');
  await page.click('form[aria-label="Edit the key"] button.danger');
  await page.waitForURL(/\/ui\/dc1\/kv\/config\/app\/$/, { timeout: DEADLINE_MS });
  await until('the key to be gone', async () => (await api(url, '/v1/kv/config/app/name')).status === 404);

  step('Sessions:');
  // Sessions: one created through the API appears live.
  await page.goto(`${url}/ui/dc1/sessions`);
  await page.locator('main h1').waitFor({ timeout: DEADLINE_MS });
  const id = (await api(url, '/v1/session/create', 'PUT', JSON.stringify({ Name: 'ui-lock', TTL: '60s' }))).json().ID;
  await page.locator(`tr[data-session="${id}"]`).waitFor({ timeout: DEADLINE_MS });
  await shot(page, 'sessions');

  step('Federation:');
  // Federation: this datacenter, as its own gateways' view (none in -dev) and the catalog's list.
  await page.goto(`${url}/ui/dc1/federation`);
  await page.locator('tr[data-dc="dc1"]').waitFor({ timeout: DEADLINE_MS });
  await shot(page, 'federation');

  assert.deepEqual(errors, [], 'no script errors in the page');
  await page.close();
}

main().catch((e) => {
  console.error(`FAIL: ui browser test: ${e.stack ?? e}`);
  process.exit(1);
});
