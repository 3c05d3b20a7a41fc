// The data pages in a real browser against a real neurod (runtime 'process': no jobs run):
// storage (upload by file picker and by drag and drop with progress, cancel, new folder,
// download, rename, delete, a quota refusal shown per file), sharing a folder with a
// second user who then opens it, secrets (listed without their value anywhere in the page), images (the empty
// state, then an image pushed through the registry API listed with its tags).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { loggedInPage, screenshot, setup } from './harness.mjs';

// Chromium logs each 4xx/5xx answer as a console error; the quota refusal is one we cause.
const unexpected = (page) => page.problems.filter((p) => !/status of 403/.test(p));

test('storage: upload (picker and drop), folder, download, delete, share with bob', async (t) => {
  const { cluster, browser } = await setup(t, { runtime: 'process' });
  const alice = await cluster.addUser('alice');
  const bob = await cluster.addUser('bob');
  // A storage quota that the uploads below fit in, all but one.
  await cluster.api('PUT', '/api/v1/admin/quotas/projects/alice', { storage_bytes: 300000 });
  const page = await loggedInPage(browser, cluster, alice);

  // /storage opens the personal project, empty at first.
  await page.getByRole('link', { name: 'Storage' }).click();
  await page.waitForURL(/\/storage\/alice$/);
  await page.getByText('This folder is empty — drop files here or Upload').waitFor();

  // Upload through the file picker.
  const content = 'hello from alice\n'.repeat(1000); // 17000 bytes
  const chooser = page.waitForEvent('filechooser');
  await page.getByRole('button', { name: 'Upload files' }).first().click();
  await (await chooser).setFiles([{ name: 'hello.txt', mimeType: 'text/plain', buffer: Buffer.from(content) }]);
  const bar = page.getByRole('progressbar', { name: 'Upload of hello.txt' });
  await bar.waitFor();
  await page.waitForFunction(
    () => document.querySelector('[aria-label="Upload of hello.txt"]')?.getAttribute('aria-valuenow') === '100',
  );
  await page.getByText('17 KiB · done').waitFor();
  const row = page.getByRole('row', { name: /hello\.txt/ });
  await row.waitFor();
  assert.match(await row.innerText(), /17 KiB/);

  // Upload by dropping a file onto the listing (a DataTransfer made in the page); the
  // area highlights while something is dragged over it.
  const area = page.getByRole('region', { name: 'Contents of storage:' });
  await area.evaluate((el) => {
    const dt = new DataTransfer();
    dt.items.add(new File(['x'.repeat(3000)], 'dropped.bin', { type: 'application/octet-stream' }));
    window.__dt = dt;
    el.dispatchEvent(new DragEvent('dragenter', { dataTransfer: dt, bubbles: true, cancelable: true }));
    el.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
  });
  await page.locator('.dropzone-area.dragging').waitFor();
  await page.getByText('Drop files to upload them to storage:').waitFor();
  await screenshot(page, 'storage-drop');
  await area.evaluate((el) =>
    el.dispatchEvent(new DragEvent('drop', { dataTransfer: window.__dt, bubbles: true, cancelable: true })),
  );
  await page.getByRole('progressbar', { name: 'Upload of dropped.bin' }).waitFor();
  await page.getByRole('row', { name: /dropped\.bin/ }).waitFor();
  assert.match(await page.getByRole('row', { name: /dropped\.bin/ }).innerText(), /2\.9 KiB/);
  assert.equal(await page.locator('.dropzone-area.dragging').count(), 0);

  // A slow upload (the network throttled through the DevTools protocol): its bar moves,
  // then Cancel stops it and nothing lands in the folder (nor counts against the quota).
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 20, downloadThroughput: -1, uploadThroughput: 16 * 1024 });
  const chooserSlow = page.waitForEvent('filechooser');
  await page.getByRole('button', { name: 'Upload files' }).first().click();
  await (await chooserSlow).setFiles([{ name: 'slow.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(160 * 1024, 2) }]);
  await page.waitForFunction(() => {
    const v = Number(document.querySelector('[aria-label="Upload of slow.bin"]')?.getAttribute('aria-valuenow'));
    return v > 0 && v < 100;
  });
  await page.getByText(/of 160 KiB · \d+%/).waitFor();
  await screenshot(page, 'storage-upload');
  // Uploads outlive the page: to Images and back, it is still running.
  await page.getByRole('link', { name: 'Images' }).click();
  await page.getByRole('heading', { name: 'Images' }).waitFor();
  await page.getByRole('link', { name: 'Storage' }).click();
  await page.getByRole('progressbar', { name: 'Upload of slow.bin' }).waitFor();
  await page.getByRole('button', { name: 'Cancel the upload of slow.bin' }).click();
  await page.locator('.upload-list li', { hasText: 'slow.bin' }).getByText('cancelled').waitFor();
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  await page.reload();
  await page.getByRole('row', { name: /dropped\.bin/ }).waitFor();
  assert.equal(await page.getByRole('row', { name: /slow\.bin/ }).count(), 0);

  // What the browser uploaded is on the server, byte for byte.
  const token = await cluster.tokenOf(alice);
  const got = await fetch(`${cluster.url}/api/v1/storage/alice/hello.txt`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(await got.text(), content);

  // A new folder, entered through its link and left through the breadcrumb.
  await page.getByRole('button', { name: 'New folder' }).click();
  await page.getByLabel('Folder name').fill('results');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('link', { name: 'results' }).click();
  await page.waitForURL(/\/storage\/alice\/results$/);
  await page.getByText('This folder is empty — drop files here or Upload').waitFor();
  const chooser2 = page.waitForEvent('filechooser');
  await page.getByRole('button', { name: 'Upload files' }).first().click();
  await (await chooser2).setFiles([
    { name: 'metrics.json', mimeType: 'application/json', buffer: Buffer.from('{"loss": 0.1}\n') },
    { name: 'model.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(200000, 7) },
  ]);
  await page.getByRole('row', { name: /model\.bin/ }).waitFor();
  await page.getByRole('row', { name: /metrics\.json/ }).waitFor();
  await page.getByText('195 KiB · done').waitFor();
  await page.getByRole('navigation', { name: 'Breadcrumb' }).getByRole('link', { name: 'storage: (alice)' }).click();
  await page.waitForURL(/\/storage\/alice$/);
  await page.getByRole('link', { name: 'results' }).waitFor();
  await screenshot(page, 'storage');

  // Download: the browser saves exactly the file's bytes under its name.
  const download = page.waitForEvent('download');
  await page.getByRole('link', { name: 'Download hello.txt' }).click();
  const d = await download;
  assert.equal(d.suggestedFilename(), 'hello.txt');
  assert.equal(readFileSync(await d.path(), 'utf8'), content);

  // Rename, then delete, confirmed.
  await page.getByRole('button', { name: 'Rename dropped.bin' }).click();
  const rename = page.getByRole('dialog', { name: 'Rename dropped.bin' });
  await rename.getByLabel('New name').fill('renamed.bin');
  await rename.getByRole('button', { name: 'Rename' }).click();
  await page.getByRole('row', { name: /renamed\.bin/ }).waitFor();
  assert.equal(await page.getByRole('row', { name: /dropped\.bin/ }).count(), 0);
  await page.getByRole('button', { name: 'Delete renamed.bin' }).click();
  const confirm = page.getByRole('dialog', { name: 'Delete file' });
  await confirm.getByText('This cannot be undone').waitFor();
  await confirm.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('row', { name: /renamed\.bin/ }).waitFor({ state: 'detached' });

  // Over quota: the file's own line shows the server's refusal, the others go on.
  const chooser3 = page.waitForEvent('filechooser');
  await page.getByRole('button', { name: 'Upload files' }).first().click();
  await (await chooser3).setFiles([{ name: 'big.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(400000, 1) }]);
  const err = page.locator('.upload-list li', { hasText: 'big.bin' }).getByRole('alert');
  await err.waitFor();
  assert.match(await err.innerText(), /quota|cut off/i);
  assert.equal(await page.getByRole('row', { name: /big\.bin/ }).count(), 0);

  // Share the folder with bob, read-only, through the dialog.
  await page.getByRole('button', { name: 'Share results' }).click();
  const share = page.getByRole('dialog', { name: 'Share storage:results' });
  await share.getByLabel('User or role').fill('bob');
  await share.getByLabel('Permission').selectOption('read');
  await share.getByRole('button', { name: 'Share', exact: true }).click();
  await share.getByText('Shared with bob (read).').waitFor();
  await share.getByRole('cell', { name: 'bob', exact: true }).waitFor();
  await screenshot(page, 'share-dialog');
  await share.getByRole('button', { name: 'Close' }).click();

  // bob opens alice's folder by its URL (the same path as its URI) and downloads from it;
  // he may not write there, so no upload button.
  const bobPage = await loggedInPage(browser, cluster, bob);
  await bobPage.goto('/storage/alice/results');
  await bobPage.getByRole('row', { name: /model\.bin/ }).waitFor();
  await bobPage.getByText('read-only for you').waitFor();
  assert.equal(await bobPage.getByRole('button', { name: 'Upload files' }).count(), 0);
  // His own storage offers alice's project in the picker.
  await bobPage.goto('/storage');
  await bobPage.waitForURL(/\/storage\/bob$/);
  await bobPage.getByLabel('Project').selectOption('alice');
  await bobPage.waitForURL(/\/storage\/alice$/);
  await bobPage.getByRole('link', { name: 'results' }).click();
  await bobPage.getByRole('row', { name: /metrics\.json/ }).waitFor();

  // alice revokes; bob's next look finds nothing.
  await page.getByRole('button', { name: 'Share results' }).click();
  await share.getByRole('button', { name: "Revoke bob's access" }).click();
  await share.getByText("Revoked bob's read").waitFor();
  await share.getByRole('button', { name: 'Close' }).click();
  await bobPage.reload();
  await bobPage.getByText('does not exist, or you may not read it').waitFor();

  // Usable on a narrow window: the actions stay reachable, nothing spills sideways.
  await page.setViewportSize({ width: 400, height: 800 });
  await page.goto('/storage/alice/results');
  await page.getByRole('button', { name: 'Delete model.bin' }).scrollIntoViewIfNeeded();
  await page.getByRole('button', { name: 'Upload files' }).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the window`);
  await screenshot(page, 'storage-narrow');

  assert.deepEqual(unexpected(page), []);
});

test('secrets: add (value never in the page), list, delete', async (t) => {
  const { cluster, browser } = await setup(t, { runtime: 'process' });
  const alice = await cluster.addUser('alice');
  const page = await loggedInPage(browser, cluster, alice);
  await page.getByRole('link', { name: 'Secrets' }).click();
  await page.getByText('No secrets yet').waitFor();

  const value = 'sk-very-secret-value-8472';
  await page.getByRole('button', { name: 'Add secret' }).first().click();
  const dialog = page.getByRole('dialog', { name: 'Add secret' });
  await dialog.getByLabel('Key').fill('HF_TOKEN');
  await dialog.getByLabel('Value', { exact: true }).fill(value);
  assert.equal(await dialog.getByLabel('Value', { exact: true }).getAttribute('type'), 'password');
  await screenshot(page, 'secret-add');
  await dialog.getByRole('button', { name: 'Save secret' }).click();
  await page.getByRole('row', { name: /HF_TOKEN/ }).waitFor();
  await page.getByText('Saved secret HF_TOKEN in project alice').waitFor();

  // A second one, then nowhere in the page (markup, inputs, attributes) is either value.
  await page.getByRole('button', { name: 'Add secret' }).first().click();
  await dialog.getByLabel('Key').fill('DB_PASSWORD');
  await dialog.getByLabel('Value', { exact: true }).fill('pw-0000-zzzz');
  await dialog.getByRole('button', { name: 'Save secret' }).click();
  await page.getByRole('row', { name: /DB_PASSWORD/ }).waitFor();
  const html = await page.content();
  assert.ok(!html.includes(value) && !html.includes('pw-0000-zzzz'), 'a secret value is in the page');
  const inputs = await page.$$eval('input, textarea', (els) => els.map((e) => e.value));
  assert.ok(!inputs.some((v) => v.includes(value)), 'a secret value stays in an input');
  await screenshot(page, 'secrets');

  // The server holds the value as typed.
  const token = await cluster.tokenOf(alice);
  const s = await cluster.api('GET', '/api/v1/secrets/HF_TOKEN', undefined, token);
  assert.equal(Buffer.from(s.value, 'base64').toString(), value);

  // A value read from a file, binary bytes intact.
  const creds = Buffer.from([0, 1, 2, 250, 255, 10, 65]);
  await page.getByRole('button', { name: 'Add secret' }).first().click();
  await dialog.getByLabel('Key').fill('CREDS_FILE');
  await dialog.getByLabel('Or read the value from a file').setInputFiles({ name: 'creds.bin', mimeType: 'application/octet-stream', buffer: creds });
  await dialog.getByText('Taken from creds.bin (7 B).').waitFor();
  await dialog.getByRole('button', { name: 'Save secret' }).click();
  await page.getByRole('row', { name: /CREDS_FILE/ }).waitFor();
  const c = await cluster.api('GET', '/api/v1/secrets/CREDS_FILE', undefined, token);
  assert.deepEqual(Buffer.from(c.value, 'base64'), creds);
  await page.getByRole('button', { name: 'Delete CREDS_FILE' }).click();
  await page.getByRole('dialog', { name: 'Delete secret' }).getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('row', { name: /CREDS_FILE/ }).waitFor({ state: 'detached' });

  await page.getByRole('button', { name: 'Delete DB_PASSWORD' }).click();
  await page.getByRole('dialog', { name: 'Delete secret' }).getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('row', { name: /DB_PASSWORD/ }).waitFor({ state: 'detached' });
  await page.getByRole('button', { name: 'Delete HF_TOKEN' }).click();
  await page.getByRole('dialog', { name: 'Delete secret' }).getByRole('button', { name: 'Delete' }).click();
  await page.getByText('No secrets yet').waitFor();
  assert.deepEqual(await cluster.api('GET', '/api/v1/secrets', undefined, token), []);
  assert.deepEqual(page.problems, []);
});

// A tiny OCI image (a JSON config and one 10-byte layer) pushed with fetch.
async function pushTinyImage(cluster, token, repo, tags) {
  const auth = { Authorization: `Bearer ${token}` };
  const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', created: '2026-01-02T03:04:05Z', rootfs: { type: 'layers', diff_ids: [] } }));
  const layer = Buffer.from('layerbytes');
  for (const blob of [config, layer]) {
    const r = await fetch(`${cluster.url}/v2/${repo}/blobs/uploads/?digest=${sha(blob)}`, { method: 'POST', headers: auth, body: blob });
    assert.equal(r.status, 201, await r.text());
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: layer.length }],
  });
  for (const tag of tags) {
    const r = await fetch(`${cluster.url}/v2/${repo}/manifests/${tag}`, {
      method: 'PUT',
      headers: { ...auth, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      body: manifest,
    });
    assert.equal(r.status, 201, await r.text());
  }
  return config.length + layer.length;
}

test('images: empty state, then a pushed image with its tags, delete a tag', async (t) => {
  const { cluster, browser } = await setup(t, { runtime: 'process' });
  const alice = await cluster.addUser('alice');
  const page = await loggedInPage(browser, cluster, alice);
  await page.getByRole('link', { name: 'Images' }).click();
  await page.getByText('No images yet').waitFor();
  await page.getByText('neuro image push train:1').waitFor();
  await screenshot(page, 'images-empty');

  const token = await cluster.tokenOf(alice);
  await pushTinyImage(cluster, token, 'alice/train', ['1', 'latest']);
  await pushTinyImage(cluster, token, 'alice/tools/prep', ['v2']);
  await page.getByRole('button', { name: 'Refresh' }).click();
  const train = page.getByRole('button', { name: 'image:train', exact: true });
  await train.waitFor();
  await page.getByRole('button', { name: 'image:tools/prep', exact: true }).waitFor();
  await train.click();
  assert.equal(await train.getAttribute('aria-expanded'), 'true');
  const tags = page.getByRole('table', { name: 'Tags of image:train' });
  const tag1 = tags.getByRole('row', { name: /^1 / });
  await tag1.getByText('image:train:1').waitFor();
  await tag1.getByText('121 B').waitFor();
  const host = new URL(cluster.url).host;
  await tag1.getByText(`docker pull ${host}/alice/train:1`).waitFor();
  await tags.getByRole('row', { name: /latest/ }).waitFor();
  await screenshot(page, 'images');

  await tags.getByRole('button', { name: 'Delete tag latest' }).click();
  await page.getByRole('dialog', { name: 'Delete tag' }).getByRole('button', { name: 'Delete tag' }).click();
  await tags.getByRole('row', { name: /latest/ }).waitFor({ state: 'detached' });
  const list = await cluster.api('GET', '/v2/alice/train/tags/list', undefined, token);
  assert.deepEqual(list.tags, ['1']);

  // Share dialog carries the image's URI.
  await page.getByRole('button', { name: 'Share image:train' }).click();
  await page.getByRole('dialog', { name: 'Share image:train' }).getByText('image://browser/alice/train').waitFor();
  assert.deepEqual(page.problems, []);
});
