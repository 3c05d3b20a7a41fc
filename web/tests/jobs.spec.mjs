// The jobs pages in a real browser against a real neurod on the test Podman service: run a
// job from the form, watch its log and CPU chart on its page, kill it, and see the list.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loggedInPage, screenshot, setup, testImage } from './harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitForStatus(cluster, token, id, want, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  let job;
  while (Date.now() < deadline) {
    job = await cluster.api('GET', `/api/v1/jobs/${id}`, undefined, token);
    if (want.includes(job.status)) return job;
    await sleep(200);
  }
  throw new Error(`job ${id} is ${job?.status}, not ${want.join('/')}, after ${timeoutMs} ms`);
}

test('jobs: run from the form, follow logs and charts, kill, see the list', { timeout: 240000 }, async (t) => {
  const { cluster, browser } = await setup(t, { runtime: 'docker' });
  const image = testImage();
  const alice = await cluster.addUser('alice');
  const token = await cluster.tokenOf(alice);

  // A few jobs in other states for the list.
  const submit = (body) => cluster.api('POST', '/api/v1/jobs', { image, preset_name: 'cpu-small', ...body }, token);
  const ok = await submit({ name: 'prepare-data', command: ['sh', '-c', 'echo prepared'], tags: ['exp=1'] });
  const bad = await submit({ name: 'train-broken', command: ['sh', '-c', 'echo oops >&2; exit 3'] });
  const serve = await submit({ name: 'notebook', command: ['sleep', '300'], http: { port: 8888, requires_auth: true } });
  await waitForStatus(cluster, token, ok.id, ['succeeded']);
  const failed = await waitForStatus(cluster, token, bad.id, ['failed']);
  assert.equal(failed.history.exit_code, 3);
  await waitForStatus(cluster, token, serve.id, ['running']);

  const page = await loggedInPage(browser, cluster, alice);
  t.after(() => page.context().close().catch(() => {}));

  // The form.
  await page.getByRole('link', { name: 'Run a job' }).first().click();
  await page.getByRole('heading', { name: 'Run a job' }).waitFor();
  // Validation happens before anything is sent.
  await page.getByRole('button', { name: 'Run the job' }).click();
  await page.getByText('Give an image').waitFor();
  await page.getByLabel('Preset').selectOption('cpu-small');
  await page.getByLabel('Image').fill(image);
  await page.getByLabel('Name', { exact: true }).fill('count-lines');
  await page.getByLabel('Command').fill(`sh -c 'for i in 1 2 3; do echo line-$i; sleep 1; done; sleep 300'`);
  await page.getByRole('button', { name: 'Add a variable' }).click();
  await page.getByLabel('Variable 1 name').fill('GREETING');
  await page.getByLabel('Variable 1 value').fill('hello');
  await page.getByLabel('Life span').fill('1h');
  await page.getByLabel('Tags').fill('demo exp=2');
  await page.getByText('Give an image').waitFor({ state: 'detached' }); // corrected: the message goes
  await page.evaluate(() => window.scrollTo(0, 0));
  await screenshot(page, 'job-new');
  await page.getByRole('button', { name: 'Run the job' }).click();

  // The job's page: its log streams in, the CPU chart gets samples.
  await page.waitForURL(/\/jobs\/job-[0-9a-f-]+$/, { timeout: 20000 });
  const jobId = page.url().split('/').pop();
  await page.getByRole('heading', { name: 'count-lines', level: 1 }).waitFor();
  await page.locator('pre.job-log', { hasText: 'line-3' }).waitFor({ timeout: 60000 });
  const log = await page.locator('pre.job-log').innerText();
  assert.match(log, /line-1\nline-2\nline-3/);
  await page.locator('.job-header .badge', { hasText: 'running' }).waitFor({ timeout: 20000 });
  await page.waitForFunction(
    () => Number(document.querySelector('.charts-card')?.getAttribute('data-samples') || 0) >= 4,
    null,
    { timeout: 30000 },
  );
  const cpuChart = page.getByRole('figure', { name: 'CPU chart' });
  await cpuChart.locator('canvas').waitFor();
  assert.match(await cpuChart.locator('.chart-now').innerText(), /\d+(\.\d+)? cores/);
  assert.equal(await page.getByRole('figure', { name: 'Memory chart' }).locator('canvas').count(), 1);
  // The properties: the env var's name, the command as typed.
  assert.match(await page.locator('dl.props').innerText(), /GREETING=hello/);
  assert.match(await page.locator('dl.props').innerText(), /sh -c 'for i in 1 2 3/);
  await screenshot(page, 'job-detail');

  // A narrow window: the same page is usable at 420 px.
  const narrow = await loggedInPage(browser, cluster, alice, { width: 420, height: 800 });
  t.after(() => narrow.context().close().catch(() => {}));
  await narrow.goto(`/jobs/${jobId}`);
  await narrow.locator('pre.job-log', { hasText: 'line-3' }).waitFor({ timeout: 30000 });
  await narrow.getByRole('button', { name: 'Kill' }).waitFor();
  const overflow = await narrow.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `the narrow page scrolls sideways by ${overflow}px`);
  await screenshot(narrow, 'job-detail-narrow');
  await narrow.goto('/jobs');
  await narrow.locator(`tr[data-job-id="${jobId}"]`).waitFor();
  await screenshot(narrow, 'jobs-narrow');

  // Kill, confirmed; the status becomes cancelled.
  await page.getByRole('button', { name: 'Kill' }).click();
  const dialog = page.getByRole('dialog', { name: /Kill count-lines/ });
  await dialog.waitFor();
  await dialog.getByRole('button', { name: 'Kill the job' }).click();
  await page.locator('.job-header .badge', { hasText: 'cancelled' }).waitFor({ timeout: 30000 });
  await page.getByRole('button', { name: 'Kill' }).waitFor({ state: 'detached' });
  await page.getByRole('cell', { name: 'UserRequested' }).waitFor();
  const killed = await waitForStatus(cluster, token, jobId, ['cancelled']);
  assert.equal(killed.history.reason, 'UserRequested');

  // A finished job's page: the whole log read once, the recorded telemetry (or a note).
  await page.reload();
  await page.locator('pre.job-log', { hasText: 'line-3' }).waitFor();
  await page.getByText('Complete log').waitFor();
  await page.getByText(/recorded history|No telemetry for this finished job/).first().waitFor();
  await page.getByRole('heading', { name: 'Status history' }).scrollIntoViewIfNeeded();
  await screenshot(page, 'job-detail-finished');
  // Share opens the sharing dialog for the job.
  await page.getByRole('button', { name: 'Share' }).click();
  await page.getByRole('dialog', { name: /Share job count-lines/ }).waitFor();
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'hidden' });

  // A running job with an HTTP port links to it.
  await page.goto(`/jobs/${serve.id}`);
  const open = page.getByRole('link', { name: 'Open HTTP' });
  await open.waitFor();
  assert.equal(await open.getAttribute('href'), `/api/v1/jobs/${serve.id}/http/`);
  assert.equal(await open.getAttribute('target'), '_blank');
  assert.match(await open.getAttribute('rel'), /noopener/);

  // The list: every job with its status; killing one from its row updates the row.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' }).click();
  const row = (id) => page.locator(`tr[data-job-id="${id}"]`);
  await row(jobId).locator('.badge', { hasText: 'cancelled' }).waitFor();
  await row(ok.id).locator('.badge', { hasText: 'succeeded' }).waitFor();
  await row(bad.id).locator('.badge', { hasText: 'failed' }).waitFor();
  await row(serve.id).locator('.badge', { hasText: 'running' }).waitFor();
  await screenshot(page, 'jobs');

  // Search narrows the rows.
  await page.getByLabel('Search').fill('train');
  await row(bad.id).waitFor();
  assert.equal(await page.locator('tbody tr').count(), 1);
  await page.getByLabel('Search').fill('');

  // Active tab: only pending/running jobs.
  await page.getByRole('tab', { name: 'Active' }).click();
  await row(serve.id).waitFor();
  await row(ok.id).waitFor({ state: 'detached' });
  assert.equal(await page.locator('tbody tr').count(), 1);

  await row(serve.id).getByRole('button', { name: 'Kill notebook' }).click();
  await page.getByRole('dialog', { name: /Kill notebook/ }).getByRole('button', { name: 'Kill the job' }).click();
  // The stream says the cancelled job left the Active filter (a `remove` event).
  await row(serve.id).waitFor({ state: 'detached', timeout: 30000 });
  await waitForStatus(cluster, token, serve.id, ['cancelled']);

  assert.deepEqual(page.problems, []);
  assert.deepEqual(narrow.problems, []);
});

test('jobs: empty list, a job shared by another user, server errors shown as they are', { timeout: 120000 }, async (t) => {
  const { cluster, browser } = await setup(t, { runtime: 'docker' });
  const alice = await cluster.addUser('alice');
  const bob = await cluster.addUser('bob');
  const aliceToken = await cluster.tokenOf(alice);
  const shared = await cluster.api('POST', '/api/v1/jobs',
    { image: testImage(), preset_name: 'cpu-small', name: 'shared-run', command: ['sh', '-c', 'echo hi'] }, aliceToken);
  const page = await loggedInPage(browser, cluster, bob);
  t.after(() => page.context().close().catch(() => {}));
  await page.getByText('No jobs yet').waitFor();
  // Shared with bob (read): the list answers every job he may read, so it shows up.
  await cluster.api('POST', '/api/v1/users/bob/permissions', [{ uri: shared.uri, action: 'read' }], aliceToken);
  await page.reload();
  const row = page.locator(`tr[data-job-id="${shared.id}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /alice/);
  await page.goto('/jobs');
  await page.getByRole('main').getByRole('link', { name: 'Run a job' }).first().click();
  await page.getByLabel('Image').fill('image:/nobody/nothing:1');
  await page.getByRole('button', { name: 'Run the job' }).click();
  // The server refuses the image of a project bob cannot read: its message, as it is.
  const alert = page.getByRole('alert');
  await alert.waitFor();
  assert.match(await alert.innerText(), /image|permission|not/i);
  // A job that does not exist.
  await page.goto('/jobs/job-00000000-0000-0000-0000-000000000000');
  await page.getByText('No such job').waitFor();
});

// A job's JSON as the API answers it (modules/jobs/README.md), for tests that mock the API.
function mockJob(id, name, status, reason = '') {
  return {
    id, name, owner: 'alice', project_name: 'alice', cluster_name: 'browser', uri: `job://browser/alice/${id}`, status,
    history: { status, reason, description: '', created_at: new Date().toISOString(), started_at: null, finished_at: null,
      exit_code: null, run_time_seconds: 0, restarts: 0 },
    container: { image: 'busybox:1', command: ['sleep', '60'], entrypoint: [], env: {}, working_dir: '', tty: false,
      resources: { cpu: 0.5, memory: 134217728, memory_mb: 128, shm: false, nvidia_gpu: 0 }, volumes: [], secret_env: {},
      secret_volumes: [], disk_volumes: [], http: null },
    preset_name: 'cpu-small', tags: [], description: '', restart_policy: 'never', priority: 'normal',
    max_run_time_minutes: null, executor: 'process', restarts: 0,
  };
}

// The watch adapter (web/src/lib/jobs-watch.ts) against the stream's contract, served here
// by the browser's request interception: a `snapshot` event, then `job` events that
// replace rows by id, and `remove` drops one (the first test runs on neurod's real stream).
test('jobs: the list follows the job stream (snapshot, then job events)', { timeout: 120000 }, async (t) => {
  const { cluster, browser } = await setup(t, { runtime: 'process' });
  const alice = await cluster.addUser('alice');
  const page = await loggedInPage(browser, cluster, alice);
  t.after(() => page.context().close().catch(() => {}));
  const job = mockJob;
  const a = job('job-aaaa', 'first', 'pending', 'Creating');
  const b = job('job-bbbb', 'second', 'running');
  let requests = 0;
  await page.route(/\/api\/v1\/jobs\?.*watch=true/, (route) => {
    requests++;
    const ev = (name, data) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
    route.fulfill({
      status: 200,
      headers: { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' },
      body: 'retry: 600000\n\n' + ev('snapshot', { jobs: [a, b] }) + ev('job', { ...a, status: 'running', history: { ...a.history, status: 'running', reason: '' } }) +
        ev('job', job('job-cccc', 'third', 'pending', 'Scheduling')) + ev('remove', { id: 'job-bbbb' }),
    });
  });
  await page.goto('/jobs');
  const row = (id) => page.locator(`tr[data-job-id="${id}"]`);
  await row('job-aaaa').locator('.badge', { hasText: 'running' }).waitFor();
  await row('job-cccc').locator('.badge', { hasText: 'pending' }).waitFor();
  await row('job-bbbb').waitFor({ state: 'detached' });
  assert.equal(await page.getByText('Live updates unavailable').count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Refresh' }).count(), 0);
  assert.ok(requests >= 1);
  assert.deepEqual(page.problems, []);
});

// The job page's streams, with the server's side played here (the browser's request and
// WebSocket interception): the log socket drops with 1013 ("too far behind") and the page
// reconnects with `since` = the last line's time, showing no line twice; the chart starts
// from the recent history, then takes the /top samples; the log's close 1000 ends it.
test('jobs: the log reconnects with since and repeats nothing; charts fill from history then /top', { timeout: 120000 }, async (t) => {
  const { cluster, browser } = await setup(t, { runtime: 'process' });
  const alice = await cluster.addUser('alice');
  const page = await loggedInPage(browser, cluster, alice);
  t.after(() => page.context().close().catch(() => {}));
  const id = 'job-5eed';
  const running = { ...mockJob(id, 'mocked', 'running'), statuses: [] };
  running.history.started_at = new Date(Date.now() - 60000).toISOString();
  let status = running;
  await page.route(new RegExp(`/api/v1/jobs/${id}$`), (route) => route.fulfill({ json: status }));
  // The job page watches its job: an empty snapshot, and no reconnect for a long while.
  await page.route(/\/api\/v1\/jobs\?/, (route) =>
    route.fulfill({ contentType: 'text/event-stream', body: 'retry: 600000\nevent: snapshot\ndata: {"jobs":[]}\n\n' }));
  const now = Date.now() / 1000;
  await page.route(new RegExp(`/api/v1/jobs/${id}/telemetry`), (route) =>
    route.fulfill({
      json: {
        job_id: id, source: 'recent', step: 1,
        points: [3, 2, 1].map((ago) => ({ timestamp: now - ago, samples: 1, cpu_avg: 0.25, cpu_max: 0.25,
          memory_avg_bytes: 50 * 2 ** 20, memory_max_bytes: 50 * 2 ** 20 })),
      },
    }));
  const tops = [];
  await page.routeWebSocket(new RegExp(`/api/v1/jobs/${id}/top`), (ws) => {
    tops.push(ws);
    ws.send(JSON.stringify({ cpu: 0.5, memory: 60, memory_bytes: 60 * 2 ** 20, timestamp: now }));
  });
  const T = (s) => `2026-12-06T10:00:0${s}.000000000Z`;
  const logUrls = [];
  await page.routeWebSocket(new RegExp(`/api/v1/jobs/${id}/log_ws`), async (ws) => {
    logUrls.push(ws.url());
    if (logUrls.length === 1) {
      ws.send(`${T(1)} alpha\n${T(2)} beta\n`);
      ws.send(`${T(2)} gamma\n`); // two lines with the same time
      await ws.close({ code: 1013, reason: 'too far behind: reconnect with since' });
    } else {
      // What the server sends from `since` on: the lines at that time again, then new ones.
      ws.send(`${T(2)} beta\n${T(2)} gamma\n${T(3)} delta\n`);
      status = { ...running, status: 'succeeded', history: { ...running.history, status: 'succeeded', reason: 'Completed',
        finished_at: new Date().toISOString(), exit_code: 0 } };
      await ws.close({ code: 1000, reason: 'the log ended' });
    }
  });
  await page.goto(`/jobs/${id}`);
  await page.getByText('Log ended').waitFor({ timeout: 20000 });
  assert.equal(await page.locator('pre.job-log').innerText(), 'alpha\nbeta\ngamma\ndelta');
  assert.equal(logUrls.length, 2);
  assert.match(logUrls[0], /timestamps=true/);
  assert.equal(new URL(logUrls[1]).searchParams.get('since'), T(2));
  // The log's end made the page read the job again: it finished.
  await page.locator('.job-header .badge', { hasText: 'succeeded' }).waitFor();
  // Three history points and one live sample.
  await page.waitForFunction(() => document.querySelector('.charts-card')?.getAttribute('data-samples') === '4');
  assert.equal(await page.getByRole('figure', { name: 'CPU chart' }).locator('.chart-now').innerText(), '0.50 cores');
  assert.equal(tops.length, 1);
  assert.deepEqual(page.problems, []);
});
