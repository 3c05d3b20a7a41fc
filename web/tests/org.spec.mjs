// The organisation pages: an administrator adds a user, sets her quota, makes a project
// with her in it and finds all of that in the audit log; the user then sees her projects
// and quota, manages her tokens, and is kept out of the admin pages without a crash.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loggedInPage, screenshot, setup } from './harness.mjs';

// Console problems other than the browser's own note of a refused request (the test
// provokes 403/404/409 answers on purpose; the page shows their messages).
const crashes = (page) => page.problems.filter((p) => !/Failed to load resource: the server responded with a status of 4\d\d/.test(p));

test('console: users, quotas, projects, audit log and account', async (t) => {
  const { cluster, browser } = await setup(t, { runtime: 'process' });
  const boss = await cluster.addUser('boss', 'boss-secret-1', { admin: true });

  // --- the administrator adds carol through the UI
  const admin = await loggedInPage(browser, cluster, boss);
  await admin.getByRole('link', { name: 'Users' }).click();
  await admin.getByRole('heading', { name: 'Users and roles' }).waitFor();
  const addButton = admin.getByRole('button', { name: 'Add user' });
  await addButton.click();
  const addDialog = admin.getByRole('dialog', { name: 'Add user' });
  await addDialog.getByLabel('User name').fill('carol');
  await addDialog.getByLabel('Email').fill('carol@example.com');
  await addDialog.getByLabel('Initial password').fill('carol-secret-1');
  await addDialog.getByRole('button', { name: 'Create user' }).click();
  await admin.getByRole('status').filter({ hasText: 'User carol added.' }).waitFor();
  await addDialog.waitFor({ state: 'hidden' });
  // Focus went back to the button that opened the dialog.
  assert.equal(await admin.evaluate(() => document.activeElement?.textContent?.trim()), 'Add user');
  const carolRow = admin.getByRole('row').filter({ hasText: 'carol@example.com' });
  await carolRow.waitFor();

  // A mistake shows the server's own message inside the dialog.
  await addButton.click();
  await addDialog.getByLabel('User name').fill('carol');
  await addDialog.getByRole('button', { name: 'Create user' }).click();
  await addDialog.getByRole('alert').waitFor();
  assert.match(await addDialog.getByRole('alert').innerText(), /carol/);
  await addDialog.getByRole('button', { name: 'Cancel' }).click();

  // Her quota, through the quota dialog.
  await admin.getByRole('button', { name: 'Quota of carol' }).click();
  const quotaDialog = admin.getByRole('dialog', { name: 'Quota of carol' });
  await quotaDialog.getByLabel('CPU hours').fill('10');
  await quotaDialog.getByLabel('Running jobs').fill('3');
  await quotaDialog.getByLabel('Storage').fill('5GiB');
  await quotaDialog.getByRole('button', { name: 'Save quota' }).click();
  await admin.getByRole('status').filter({ hasText: 'Quota of carol saved.' }).waitFor();
  const q = await cluster.api('GET', '/api/v1/admin/quotas/users/carol');
  assert.equal(q.limits.cpu_hours, 10);
  assert.equal(q.limits.max_running_jobs, 3);
  assert.equal(q.limits.storage_bytes, 5 * 1024 ** 3);

  // Her permissions: the personal project's admin role comes with her.
  await admin.getByRole('button', { name: 'Permissions of carol' }).click();
  const perms = admin.getByRole('dialog', { name: 'Permissions of carol' });
  await perms.getByRole('cell', { name: 'role://projects/carol/admin', exact: true }).waitFor();
  await perms.getByLabel('Resource URI').fill('storage://browser/boss/shared');
  await perms.getByLabel('Action').selectOption('read');
  await perms.getByRole('button', { name: 'Grant' }).click();
  await perms.getByRole('cell', { name: 'storage://browser/boss/shared', exact: true }).waitFor();
  await perms.getByRole('button', { name: 'Revoke read on storage://browser/boss/shared' }).click();
  await perms.getByRole('cell', { name: 'storage://browser/boss/shared', exact: true }).waitFor({ state: 'hidden' });
  await perms.getByRole('button', { name: 'Close' }).first().click();
  await screenshot(admin, 'admin-users');

  // Roles, reached with the keyboard: a new role, and carol holds it.
  await admin.getByRole('tab', { name: 'Users' }).focus();
  await admin.keyboard.press('End');
  await admin.waitForURL(/kind=role/);
  assert.equal(await admin.evaluate(() => document.activeElement?.textContent), 'Roles');
  await admin.getByRole('button', { name: 'New role' }).click();
  const roleDialog = admin.getByRole('dialog', { name: 'New role' });
  await roleDialog.getByLabel('Role name').fill('boss/roles/readers');
  await roleDialog.getByRole('button', { name: 'Create role' }).click();
  await admin.getByRole('status').filter({ hasText: 'Role boss/roles/readers created.' }).waitFor();
  await admin.getByRole('button', { name: 'Add a user to boss/roles/readers' }).click();
  await admin.getByRole('dialog', { name: 'Add a user to boss/roles/readers' }).getByLabel('User').fill('carol');
  await admin.getByRole('button', { name: 'Add to role' }).click();
  await admin.getByRole('status').filter({ hasText: 'carol now holds boss/roles/readers' }).waitFor();
  const carolGrants = await cluster.api('GET', '/api/v1/users/carol/permissions');
  assert.ok(carolGrants.some((g) => g.uri === 'role://boss/roles/readers' && g.action === 'read'));

  // --- a shared project with carol in it, and its quota
  await admin.getByRole('link', { name: 'Projects' }).click();
  await admin.getByRole('button', { name: 'New project' }).click();
  const newProject = admin.getByRole('dialog', { name: 'New project' });
  await newProject.getByLabel('Project name').fill('vision');
  await newProject.getByRole('button', { name: 'Create project' }).click();
  await admin.getByRole('heading', { name: 'Project vision' }).waitFor();
  const addMember = admin.getByRole('form', { name: 'Add a member' });
  await addMember.getByLabel('User').fill('carol');
  await addMember.getByLabel('Role').selectOption('reader');
  await addMember.getByRole('button', { name: 'Add member' }).click();
  await admin.getByRole('status').filter({ hasText: 'carol is now reader of vision.' }).waitFor();
  await admin.getByLabel('Role of carol').selectOption('writer');
  await admin.getByRole('status').filter({ hasText: 'carol is now writer of vision.' }).waitFor();
  // An unknown user: the API's message, not a crash.
  await addMember.getByLabel('User').fill('nobody');
  await addMember.getByRole('button', { name: 'Add member' }).click();
  await admin.getByRole('alert').waitFor();
  assert.match(await admin.getByRole('alert').innerText(), /nobody/);
  await admin.getByRole('button', { name: 'Dismiss the error' }).click();
  await addMember.getByLabel('User').fill('');

  await admin.getByRole('button', { name: 'Set quota' }).click();
  const pq = admin.getByRole('dialog', { name: 'Quota of vision' });
  await pq.getByLabel('CPU hours').fill('100');
  await pq.getByLabel('GPU hours').fill('8');
  await pq.getByLabel('Running jobs').fill('10');
  await pq.getByLabel('Storage').fill('50GiB');
  await pq.getByRole('button', { name: 'Save quota' }).click();
  await admin.getByRole('status').filter({ hasText: 'Quota of vision saved.' }).waitFor();
  await admin.getByRole('progressbar', { name: 'CPU hours of project vision' }).waitFor();
  assert.equal(await admin.getByRole('row').filter({ hasText: 'carol' }).getByLabel('Role of carol').inputValue(), 'writer');

  // --- the audit log has the user's creation; the filter lives in the URL
  await admin.getByRole('link', { name: 'Audit log' }).click();
  await admin.getByLabel('User', { exact: true }).fill('boss');
  await admin.getByRole('button', { name: 'Apply filters' }).click();
  await admin.waitForURL(/\/admin\/audit\?user=boss/);
  const creation = admin.getByRole('row').filter({ hasText: 'POST /api/v1/users' }).filter({ hasText: 'carol' }).first();
  await creation.waitFor();
  assert.match(await creation.innerText(), /201/);
  // Another user's filter finds none of boss's entries.
  await admin.goto('/admin/audit?user=carol');
  await admin.getByText('No entries match these filters').waitFor();
  await admin.goto('/admin/audit?user=boss&limit=20');
  await creation.waitFor();
  await screenshot(admin, 'audit');
  // Paging: two per page, "Load more" brings the next two (the API's `next` cursor).
  await admin.goto('/admin/audit?user=boss&limit=2');
  await admin.locator('tbody tr').nth(1).waitFor();
  assert.equal(await admin.locator('tbody tr').count(), 2);
  await admin.getByRole('button', { name: 'Load more' }).click();
  await admin.locator('tbody tr').nth(3).waitFor();
  assert.equal(await admin.locator('tbody tr').count(), 4);
  assert.deepEqual(crashes(admin), []);

  // --- carol, in her own browser context
  const carol = await loggedInPage(browser, cluster, { name: 'carol', password: 'carol-secret-1' });
  // A running job of hers in vision shows in both quotas' usage.
  const carolToken = await cluster.tokenOf({ name: 'carol', password: 'carol-secret-1' });
  const job = await cluster.api(
    'POST',
    '/api/v1/jobs',
    { image: 'busybox', command: ['sleep', '300'], project_name: 'vision', preset_name: 'cpu-small', name: 'train' },
    carolToken,
  );
  try {
    for (let i = 0; i < 100; i++) {
      const j = await cluster.api('GET', `/api/v1/jobs/${job.id}`, undefined, carolToken);
      if (j.status === 'running') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await carol.getByRole('link', { name: 'Projects' }).click();
    await carol.getByRole('link', { name: 'vision' }).first().waitFor();
    const myQuota = carol.getByRole('region', { name: 'My quota' });
    await myQuota.getByRole('progressbar', { name: 'CPU hours of user carol' }).waitFor();
    assert.match(await myQuota.innerText(), /0 \/ 10/);
    assert.match(await myQuota.innerText(), /5\.0 GiB|5 GiB/);
    const visionQuota = carol.getByRole('region', { name: 'Quota of project vision' });
    assert.match(await visionQuota.innerText(), /Running jobs\s*1 \/ 10/);
    await screenshot(carol, 'projects');
    // The administrator's view of the project, with her job in its usage.
    await admin.goto('/projects/vision');
    await admin.getByText(/Running jobs\s*1 \/ 10/).waitFor();
    await screenshot(admin, 'project');
    // Her project page: she is a writer, so she sees members but no role controls.
    await carol.getByRole('link', { name: 'vision' }).first().click();
    await carol.getByRole('cell', { name: 'boss', exact: true }).waitFor();
    assert.equal(await carol.getByLabel('Role of boss').count(), 0);
    await carol.getByText('Only the project\'s managers and admins add or remove members.').waitFor();
  } finally {
    // The process runtime's job must not outlive the test.
    await cluster.api('DELETE', `/api/v1/jobs/${job.id}`, undefined, carolToken);
    for (let i = 0; i < 100; i++) {
      const j = await cluster.api('GET', `/api/v1/jobs/${job.id}`, undefined, carolToken);
      if (!['pending', 'running', 'suspended'].includes(j.status)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  // No Users link for her, and the page itself says why instead of failing.
  assert.equal(await carol.getByRole('link', { name: 'Users' }).count(), 0);
  await carol.goto('/admin/users');
  await carol.getByText('Administrators only').waitFor();
  await carol.goto('/admin/audit');
  await carol.getByText('Administrators only').waitFor();
  // The API itself refuses her (what the page would get): a 403 with a message.
  const refused = await fetch(cluster.url + '/api/v1/users', { headers: { Authorization: `Bearer ${carolToken}` } });
  assert.equal(refused.status, 403);
  assert.ok((await refused.json()).error.message);

  // --- her account: a token shown once, then revoked
  await carol.getByRole('link', { name: 'carol' }).click();
  await carol.getByRole('heading', { name: 'Account' }).waitFor();
  await carol.getByRole('button', { name: 'New token' }).click();
  const tokenDialog = carol.getByRole('dialog', { name: 'New API token' });
  await tokenDialog.getByLabel('Token name').fill('laptop-cli');
  await tokenDialog.getByRole('button', { name: 'Create token' }).click();
  const value = await carol.getByLabel('Your new token').inputValue();
  assert.match(value, /^nd_[A-Za-z0-9_-]{43}$/);
  const whoami = await cluster.api('GET', '/api/v1/auth/whoami', undefined, value);
  assert.equal(whoami.name, 'carol');
  await carol.getByRole('button', { name: 'Done' }).click();
  await carol.getByRole('cell', { name: 'laptop-cli', exact: true }).waitFor();
  await screenshot(carol, 'account');
  await carol.getByRole('button', { name: 'Revoke laptop-cli' }).click();
  await carol.getByRole('dialog', { name: 'Revoke laptop-cli?' }).getByRole('button', { name: 'Revoke token' }).click();
  await carol.getByRole('status').filter({ hasText: 'Token laptop-cli revoked.' }).waitFor();
  const gone = await fetch(cluster.url + '/api/v1/auth/whoami', { headers: { Authorization: `Bearer ${value}` } });
  assert.equal(gone.status, 401);

  // Changing her password keeps this session (only the others end).
  await carol.getByLabel('Current password').fill('carol-secret-1');
  await carol.getByLabel('New password', { exact: true }).fill('carol-secret-2');
  await carol.getByLabel('New password again').fill('carol-secret-2');
  await carol.getByRole('button', { name: 'Change password' }).click();
  await carol.getByRole('status').filter({ hasText: 'Password changed' }).waitFor();
  await cluster.tokenOf({ name: 'carol', password: 'carol-secret-2' });
  assert.deepEqual(crashes(carol), []);
});
