// The job HTTP proxy in a real browser (modules/monitoring/README.md, "Job HTTP proxy"):
// the page runs sandboxed (an opaque origin), so its own requests carry no cookies; the
// signed-in navigation is sent to a ticket link whose relative URLs (images, scripts,
// fetch) are authorised by the ticket. The job is busybox httpd on the process runtime.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loggedInPage, setup } from './harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A 1x1 GIF.
const PIXEL = Buffer.from('R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==', 'base64');

test('job http proxy: a signed-in browser gets a ticket link, and the sandboxed page loads its image, script and fetch', async (t) => {
  const { cluster, browser } = await setup(t, { runtime: 'process' });
  const alice = await cluster.addUser('alice');
  const token = await cluster.tokenOf(alice);

  // The job writes its site into its private /tmp (the process runtime's / is read-only).
  const files = {
    'index.html': `<!doctype html>
<html><head><meta charset="utf-8"><title>job page</title></head>
<body><h1>Served by the job</h1><img id="px" src="px.gif" alt="pixel"><p id="out">waiting</p>
<script src="app.js"></script></body></html>
`,
    'app.js': "fetch('data.json').then(r => r.text().then(b => { document.getElementById('out').textContent = r.status + ' ' + b.trim(); }))" +
      ".catch(e => { document.getElementById('out').textContent = 'failed ' + e; });\n",
    'data.json': '{"ok":true}\n',
    'px.gif': PIXEL,
  };
  const bb = '/usr/bin/busybox';
  let script = 'mkdir -p /tmp/site';
  for (const [name, body] of Object.entries(files))
    script += ` && echo ${Buffer.from(body).toString('base64')} | ${bb} base64 -d > /tmp/site/${name}`;

  const port = 21000 + Math.floor(Math.random() * 9000);
  const job = await cluster.api('POST', '/api/v1/jobs', {
    image: 'busybox',
    command: [bb, 'sh', '-c', `${script} && exec ${bb} httpd -f -p ${port} -h /tmp/site`],
    http: { port },
    preset_name: 'cpu-small',
  }, token);
  try {
    await openThroughTheConsole(cluster, browser, alice, token, job);
  } finally {
    // Process jobs outlive neurod: kill it before the harness stops neurod.
    await cluster.api('DELETE', `/api/v1/jobs/${job.id}`, undefined, token).catch(() => {});
    for (let i = 0; i < 100; i++) {
      const j = await cluster.api('GET', `/api/v1/jobs/${job.id}`, undefined, token).catch(() => ({}));
      if (!['pending', 'running'].includes(j.status)) break;
      await sleep(100);
    }
  }
});

async function openThroughTheConsole(cluster, browser, alice, token, job) {
  const root = `/api/v1/jobs/${job.id}/http/`;
  for (let i = 0; ; i++) {
    const r = await fetch(cluster.url + root, { headers: { Authorization: `Bearer ${token}` } });
    if (r.status === 200) break;
    const state = await cluster.api('GET', `/api/v1/jobs/${job.id}`, undefined, token);
    if (i > 300 || !['pending', 'running'].includes(state.status)) {
      const log = await fetch(cluster.url + `/api/v1/jobs/${job.id}/log`, { headers: { Authorization: `Bearer ${token}` } });
      throw new Error(`the job's server never answered: ${r.status} ${await r.text()}; job: ${JSON.stringify(state)}; log: ${await log.text()}`);
    }
    await sleep(200);
  }

  // The console's "Open HTTP" link, opened in the signed-in browser.
  const page = await loggedInPage(browser, cluster, alice);
  const res = await page.goto(root);
  assert.equal(res.status(), 200);
  assert.match(page.url(), new RegExp(`/api/v1/jobs/${job.id}/http/~t\\.[A-Za-z0-9_.-]+/$`));
  assert.equal(res.headers()['content-security-policy'],
    'sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads');
  assert.equal(res.headers()['referrer-policy'], 'no-referrer');
  // The sandboxed page's own requests, which carry no cookies, work through the ticket.
  await page.locator('#out', { hasText: '200 {"ok":true}' }).waitFor({ timeout: 10000 });
  assert.equal(await page.locator('#px').evaluate((img) => img.complete && img.naturalWidth), 1);

  // The link from the address bar opens in a browser that never signed in, until it expires.
  const fresh = await browser.newContext();
  const other = await fresh.newPage();
  const again = await other.goto(page.url());
  assert.equal(again.status(), 200);
  await other.locator('#out', { hasText: '200 {"ok":true}' }).waitFor({ timeout: 10000 });
  // Without the ticket it is refused.
  const bare = await other.goto(cluster.url + root);
  assert.equal(bare.status(), 401);
  await fresh.close();
}
