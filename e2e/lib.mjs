// Helpers of the browser tests: a real `roomraft dev` cluster behind a real HAProxy, headless
// Debian Chromium driven by playwright-core, axe-core on every page, screenshots of each.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
export const root = join(here, '..');
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
export const SHOTS = process.env.ROOMRAFT_SCREENSHOTS || join(root, 'target', 'screenshots');

/** Waits for `check()` to return a truthy value, polling, until `ms` have passed. */
export async function until(what, check, ms = 30000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

/** A three-node `roomraft dev` cluster on `portBase` with HAProxy in front on `portBase + 90`. */
export async function startCluster(portBase) {
  const target = resolve(root, process.env.CARGO_TARGET_DIR || 'target');
  const bin = process.env.ROOMRAFT_BIN || join(target, 'debug', 'roomraft');
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run cargo build first (scripts/test.sh does)`);
  const dir = mkdtempSync(join(tmpdir(), 'roomraft-e2e-'));
  let out = '';
  const dev = spawn(bin, ['dev', '--data-dir', dir, '--port-base', String(portBase)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  dev.stdout.on('data', (d) => { out += d; });
  dev.stderr.on('data', (d) => { out += d; });
  await until('the dev cluster', () => {
    if (dev.exitCode !== null) throw new Error(`roomraft dev exited: ${out}`);
    return out.includes('cluster is up');
  }, 120000);
  const users = Object.fromEntries(
    readFileSync(join(dir, 'demo-users.txt'), 'utf8').trim().split('\n')
      .map((l) => l.trim().split(/\s+/)).map(([u, p]) => [u, p]));
  // HAProxy's own certificate: self-signed is enough, the browser is told to accept it.
  const pem = join(dir, 'haproxy.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
    '-subj', '/CN=127.0.0.1', '-keyout', join(dir, 'lb.key'), '-out', join(dir, 'lb.crt')],
    { stdio: 'ignore' });
  writeFileSync(pem, readFileSync(join(dir, 'lb.crt'), 'utf8') + readFileSync(join(dir, 'lb.key'), 'utf8'));
  const lbPort = portBase + 90;
  const env = {
    ...process.env,
    ROOMRAFT_LB_BIND: `127.0.0.1:${lbPort}`,
    ROOMRAFT_LB_CERT: pem,
    ROOMRAFT_CA: join(dir, 'ca.pem'),
    ROOMRAFT_NODE1: `127.0.0.1:${portBase + 1}`,
    ROOMRAFT_NODE2: `127.0.0.1:${portBase + 2}`,
    ROOMRAFT_NODE3: `127.0.0.1:${portBase + 3}`,
  };
  const lb = spawn('haproxy', ['-db', '-f', join(root, 'docs', 'ops', 'haproxy.cfg')],
    { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const lbUrl = `https://127.0.0.1:${lbPort}`;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const api = await (await import('playwright-core')).request.newContext({ ignoreHTTPSErrors: true });
  await until('HAProxy to see a ready node', async () =>
    (await api.get(`${lbUrl}/health/ready`)).ok(), 30000);
  const cluster = {
    dir, users, url: lbUrl, portBase, browser, api,
    nodeUrl: (n) => `https://127.0.0.1:${portBase + n}`,
    adminToken: readFileSync(join(dir, 'admin.token'), 'utf8').trim(),
    async leader() {
      for (const n of [1, 2, 3]) {
        try {
          const r = await api.get(`${this.nodeUrl(n)}/api/v1/cluster`, {
            headers: { authorization: `Bearer ${this.adminToken}` } });
          if (r.ok()) { const j = await r.json(); if (j.leader_id) return j.leader_id; }
        } catch { /* that node is down */ }
      }
      throw new Error('no node knows a leader');
    },
    kill(n) {
      const pid = Number(readFileSync(join(dir, `node${n}`, 'pid'), 'utf8'));
      process.kill(pid, 'SIGKILL');
    },
    async stop() {
      await browser.close().catch(() => {});
      await api.dispose().catch(() => {});
      lb.kill('SIGTERM');
      dev.kill('SIGINT');
      await until('the dev cluster to stop', () => dev.exitCode !== null || dev.signalCode !== null, 30000)
        .catch(() => dev.kill('SIGKILL'));
      if (!process.env.ROOMRAFT_E2E_KEEP) rmSync(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}

/** A new browser context (its own cookies), optionally phone-sized. */
export async function newPage(cluster, opts = {}) {
  const ctx = await cluster.browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: opts.phone ? { width: 390, height: 844 } : { width: 1280, height: 900 },
    deviceScaleFactor: 1,
    isMobile: !!opts.phone,
    hasTouch: !!opts.phone,
  });
  const page = await ctx.newPage();
  page.setDefaultTimeout(20000);
  // The pages use no script of their own; a script error or a CSP violation is a failure.
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => {
    // A page shown with a 4xx status (a form with its errors) is logged as a failed load: fine.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) page.errors.push(m.text());
  });
  page.on('response', (r) => {
    if (r.request().resourceType() !== 'document' && r.status() >= 400) page.errors.push(`${r.status()} ${r.url()}`);
  });
  page.on('requestfailed', (r) => page.errors.push(`failed: ${r.url()}`));
  return page;
}

/** Runs axe-core (WCAG 2.2 A and AA rules) on the page; returns serious and critical violations. */
export async function axe(page) {
  await page.evaluate(AXE); // evaluated through the debugger protocol, so the page's CSP allows it
  const result = await page.evaluate(async () => globalThis.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
  }));
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
}

/** Checks the current page with axe and saves its screenshot as `name`. */
export async function check(page, name, assert) {
  const problems = await axe(page);
  assert.deepEqual(problems, [], `accessibility problems on ${name} (${page.url()})`);
  assert.deepEqual(page.errors, [], `script or CSP errors on ${name}`);
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  checked.add(name);
}

/** Names of every page checked, for the summary. */
export const checked = new Set();

export async function signIn(page, cluster, user) {
  await page.goto(`${cluster.url}/sign-in`);
  await page.getByLabel('School').fill('demo');
  await page.getByLabel('Username or email').fill(user);
  await page.getByLabel('Password').fill(cluster.users[user]);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/today/);
}
