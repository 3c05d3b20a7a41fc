// The console loads from neurod itself, logs in with the session cookie, and its pages
// carry the headers the issue asks for.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loggedInPage, screenshot, setup } from './harness.mjs';

test('console: served by neurod, login, navigation, logout', async (t) => {
  const { cluster, browser } = await setup(t, { runtime: 'process' });
  const alice = await cluster.addUser('alice');

  // Server side: index for any page path, strict CSP, hashed assets cached for a year.
  const index = await fetch(cluster.url + '/jobs/some-job');
  assert.equal(index.status, 200);
  assert.match(index.headers.get('content-type'), /text\/html/);
  const csp = index.headers.get('content-security-policy');
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(index.headers.get('cache-control'), 'no-cache');
  const html = await index.text();
  const asset = html.match(/\/assets\/[^"]+\.js/)[0];
  const js = await fetch(cluster.url + asset);
  assert.equal(js.status, 200);
  assert.match(js.headers.get('cache-control'), /immutable/);
  assert.equal((await fetch(cluster.url + '/assets/missing-123.js')).status, 404);
  const api404 = await fetch(cluster.url + '/api/v1/nope');
  assert.equal(api404.status, 404);
  assert.equal((await api404.json()).error.code, 'route_not_found');

  const login = await browser.newPage({ baseURL: cluster.url, viewport: { width: 1280, height: 800 } });
  await login.goto('/jobs');
  await login.getByLabel('User name').waitFor();
  await screenshot(login, 'login');
  await login.close();

  const page = await loggedInPage(browser, cluster, alice);
  await screenshot(page, 'jobs-empty');
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'neurod_session');
  assert.ok(session, 'the session cookie is set');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');

  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('button', { name: 'Log in' }).waitFor();
  assert.deepEqual(page.problems, []);
});

test('console: a wrong password shows the server message', async (t) => {
  const { cluster, browser } = await setup(t, { runtime: 'process' });
  await cluster.addUser('alice');
  const page = await browser.newPage({ baseURL: cluster.url });
  await page.goto('/');
  await page.getByLabel('User name').fill('alice');
  await page.getByLabel('Password').fill('wrong');
  await page.getByRole('button', { name: 'Log in' }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor();
  assert.match(await alert.innerText(), /password|invalid/i);
  await screenshot(page, 'login-error');
});
