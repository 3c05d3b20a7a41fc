// Sharing through the console: alice shares a running job with bob from the job's page;
// bob, whose job list is open, sees it arrive live (the watch stream), opens it and reads
// its log, but may not kill it. Then alice revokes and it leaves bob's list.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loggedInPage, screenshot, setup } from './harness.mjs';

test('share: a job shared with a second user appears in their list, read-only, until revoked', { timeout: 180000 }, async (t) => {
  const { cluster, browser } = await setup(t, { runtime: 'process' });
  const alice = await cluster.addUser('alice');
  const bob = await cluster.addUser('bob');
  const token = await cluster.tokenOf(alice);
  const job = await cluster.api('POST', '/api/v1/jobs', {
    image: 'busybox', preset_name: 'cpu-small', name: 'shared-train',
    command: ['sh', '-c', 'echo epoch-1 done; exec sleep 300'],
  }, token);
  t.after(() => cluster.api('POST', `/api/v1/jobs/${job.id}/kill`, {}, token).catch(() => {}));

  const bobPage = await loggedInPage(browser, cluster, bob);
  await bobPage.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' }).click();
  await bobPage.getByText('No jobs yet').waitFor();

  const page = await loggedInPage(browser, cluster, alice);
  await page.goto(`/jobs/${job.id}`);
  await page.getByRole('heading', { name: 'shared-train' }).waitFor();
  await page.getByRole('button', { name: 'Share' }).click();
  const dialog = page.getByRole('dialog', { name: /Share job/ });
  await dialog.getByLabel('User or role').fill('bob');
  await dialog.getByLabel('Permission').selectOption('read');
  await dialog.getByRole('button', { name: 'Share', exact: true }).click();
  await dialog.getByRole('status').waitFor();
  await dialog.getByText('bob', { exact: true }).first().waitFor();
  await screenshot(page, 'share-job');

  // Bob's list learns of it without a reload.
  const row = bobPage.locator(`tr[data-job-id="${job.id}"]`);
  await row.waitFor({ timeout: 20000 });
  assert.match(await row.innerText(), /shared-train/);
  await row.getByRole('link').first().click();
  await bobPage.getByRole('heading', { name: 'shared-train' }).waitFor();
  await bobPage.locator('pre.job-log', { hasText: 'epoch-1 done' }).waitFor({ timeout: 30000 });

  // Read is not write: the API refuses bob's kill and the page shows its message.
  const kill = bobPage.getByRole('button', { name: /^Kill/ });
  if (await kill.count()) {
    await kill.first().click();
    await bobPage.getByRole('dialog').getByRole('button', { name: /Kill the job/ }).click();
    const alert = bobPage.getByRole('dialog').getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), /permission|denied|not allowed|forbidden|write/i);
    await bobPage.keyboard.press('Escape');
  }
  const still = await cluster.api('GET', `/api/v1/jobs/${job.id}`, undefined, token);
  assert.equal(still.status, 'running');

  // Alice revokes: the job leaves bob's list.
  await bobPage.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' }).click();
  await row.waitFor();
  await dialog.getByRole('button', { name: "Revoke bob's access" }).click();
  await row.waitFor({ state: 'detached', timeout: 20000 });

  assert.deepEqual(page.problems, []);
  assert.deepEqual(bobPage.problems.filter((p) => !/status of 403/.test(p)), []);
});
