// Test harness for the console's browser tests: a real neurod (the binary CTest names in
// NEUROD_BIN) with the docker executor on the test Podman service, users made through the
// API, and Debian's Chromium driven by playwright-core. Only Node's standard library and
// playwright-core. Screenshots go to NEUROD_SCREENSHOT_DIR (CTest: build/console-screenshots).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const here = new URL('.', import.meta.url).pathname;
export const NEUROD = process.env.NEUROD_BIN || resolve(here, '../../build/src/app/neurod');
export const PODMAN_DIR = process.env.NEUROD_TEST_PODMAN_DIR || '';
export const SCREENSHOT_DIR = process.env.NEUROD_SCREENSHOT_DIR || resolve(here, '../../build/console-screenshots');
export const CHROMIUM = process.env.NEUROD_CHROMIUM || '/usr/bin/chromium';

function podmanFile(name) {
  const path = join(PODMAN_DIR, name);
  if (!PODMAN_DIR || !existsSync(path))
    throw new Error(`no test Podman service (${path} missing): CTest's podman.start fixture starts one, ` +
      'or run tests/support/podman.sh start DIR and set NEUROD_TEST_PODMAN_DIR=DIR');
  return readFileSync(path, 'utf8').trim();
}

// The test image (busybox) on the Podman service.
export function testImage() {
  return podmanFile('image');
}

// NEUROD_CONSOLE_DIR: serve the console from a directory (web/dist after `npm run build`)
// instead of the copy embedded in NEUROD_BIN, for working on pages without rebuilding neurod.
function consoleYaml() {
  const dir = process.env.NEUROD_CONSOLE_DIR;
  return dir ? `  console:\n    directory: ${resolve(dir)}\n` : '';
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Neurod {
  constructor({ runtime = 'docker', extraYaml = '' } = {}) {
    this.tmp = mkdtempSync(join(tmpdir(), 'neurod-browser-'));
    this.dataDir = join(this.tmp, 'data');
    this.config = join(this.tmp, 'neurod.yaml');
    this.logPath = join(this.tmp, 'neurod.log');
    let y = `cluster_name: browser
data_dir: ${this.dataDir}
http:
  listen: 127.0.0.1:0
  drain_timeout: 5s
database:
  url: "sqlite:neurod.db"
modules:
  auth:
    password_hash_memory: 1MiB
    password_hash_iterations: 1
  executor:
    runtime: ${runtime}
    stop_grace: 2s
    capacity: {cpu: 2, memory: 4GiB, gpus: 0}
`;
    if (runtime === 'docker') {
      y += `    docker:
      socket: ${podmanFile('socket')}
      ulimits:
        - {name: nofile, soft: 1024, hard: 1024}
        - {name: nproc, soft: 4096, hard: 4096}
`;
    }
    y += `  jobs:
    image_registry: "local"
${consoleYaml()}${extraYaml}presets:
  - {name: cpu-small, cpu: 0.5, memory: 128MiB}
  - {name: cpu-large, cpu: 1, memory: 256MiB}
`;
    writeFileSync(this.config, y);
  }

  async start(timeoutMs = 30000) {
    const { openSync } = await import('node:fs');
    const out = openSync(this.logPath, 'w');
    this.proc = spawn(NEUROD, ['--config', this.config], { stdio: ['ignore', out, out] });
    this.exited = new Promise((r) => this.proc.on('exit', (code, sig) => r({ code, sig })));
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const m = this.log().match(/listening on (https?:\/\/[0-9.:[\]]+)/);
      if (m) {
        this.url = m[1];
        break;
      }
      if (this.proc.exitCode !== null) throw new Error(`neurod exited with ${this.proc.exitCode}:\n${this.log()}`);
      await sleep(20);
    }
    if (!this.url) throw new Error(`neurod did not report where it listens:\n${this.log()}`);
    this.adminToken = readFileSync(join(this.dataDir, 'auth', 'admin.token'), 'utf8').trim();
    return this;
  }

  log() {
    return existsSync(this.logPath) ? readFileSync(this.logPath, 'utf8') : '';
  }

  // An API call as the admin (or with another token); throws with the server's message.
  async api(method, path, body, token = this.adminToken) {
    const res = await fetch(this.url + path, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  }

  async addUser(name, password = `${name}-secret-1`, extra = {}) {
    await this.api('POST', '/api/v1/users', { name, password, ...extra });
    return { name, password };
  }

  // A token for a user (a non-cookie login), for preparing data through the API.
  async tokenOf(user) {
    const r = await fetch(this.url + '/api/v1/auth/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user: user.name, password: user.password }),
    });
    if (!r.ok) throw new Error(`login ${user.name}: ${r.status} ${await r.text()}`);
    return (await r.json()).token;
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 20000);
      await this.exited;
      clearTimeout(t);
    }
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: scripts/setup --test installs Debian's chromium`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // This machine has no outside network: keep Chromium from trying to reach Google.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-features=Translate,MediaRouter,OptimizationHints',
    ],
  });
}

// A logged-in page at 1280x800 (the reference size). Console errors (CSP
// violations among them) and failed requests are collected so tests can assert none.
export async function loggedInPage(browser, cluster, user, { width = 1280, height = 800 } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, baseURL: cluster.url });
  // Playwright's 30 s default is tight for a 2-core CI machine running other tests beside
  // these; waits still end as soon as what they wait for appears.
  context.setDefaultTimeout(60000);
  const page = await context.newPage();
  page.problems = [];
  page.on('console', (m) => {
    // Chromium logs every 4xx answer; the first whoami of a logged-out page is one.
    if (m.type() === 'error' && !/status of 401/.test(m.text())) page.problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => page.problems.push(`page error: ${e.message}`));
  await page.goto('/');
  await page.getByLabel('User name').fill(user.name);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
  return page;
}

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`), fullPage: false });
}

// One cluster and browser for a whole spec file.
export async function setup(t, opts = {}) {
  const cluster = await new Neurod(opts).start();
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close().catch(() => {});
    await cluster.stop();
  });
  return { cluster, browser };
}
