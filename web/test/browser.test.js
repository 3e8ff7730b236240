// The console in a real browser: playwright-core driving Debian's chromium
// (no browser download) against a real polycrud-server. Each test saves a
// screenshot under $POLYCRUD_WEB_TEST_OUTPUT/screenshots/.
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { after, before, describe, it } = require('node:test');
const { chromium } = require('playwright-core');
const { ADMIN_TOKEN, READER_TOKEN, makeTls, outputDir, startServer, startWeb, unique } = require('./support/stack');

const { CHROMIUM, CHROMIUM_ARGS } = require('./support/chromium');

let server;
let web;
let browser;
const shots = outputDir('screenshots');

before(async () => {
  server = await startServer('browser');
  web = await startWeb('browser', server.thriftPort);
  // launch() gives Chromium a fresh temporary profile and removes it on close.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60000 });
});

after(async () => {
  if (browser) await browser.close();
  if (web) await web.stop();
  if (server) await server.stop();
});

// Pages of the running test, so a failure can show what they looked like.
const openPages = new Set();

async function newPage(viewport = { width: 1100, height: 800 }) {
  const context = await browser.newContext({ viewport, baseURL: web.base });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  openPages.add(page);
  context.on('close', () => openPages.delete(page));
  return page;
}

// it() that, when the test fails, saves a FAILED-<test>-<n>.png of every
// page still open and closes them.
function test(name, fn) {
  it(name, async () => {
    try {
      await fn();
    } catch (err) {
      const slug = name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60);
      let n = 0;
      for (const page of [...openPages]) {
        await page.screenshot({ path: path.join(shots, `FAILED-${slug}-${n++}.png`), fullPage: true }).catch(() => {});
        await page.context().close().catch(() => {});
      }
      throw err;
    }
  });
}

async function signIn(page, token) {
  await page.goto('/');
  await page.getByLabel('Bearer token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL('**/users');
}

async function createUser(page, username, fullName = 'Browser Test') {
  await page.getByRole('link', { name: 'New user' }).click();
  assert.deepEqual(await unlabelledControls(page), []);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('E-mail').fill(`${username}@example.com`);
  await page.getByLabel('Full name').fill(fullName);
  await page.getByRole('button', { name: 'Create user' }).click();
  await page.waitForURL(/\/users\/\d+$/);
  return page.url().split('/').pop();
}

// Every visible form control has an accessible name.
async function unlabelledControls(page) {
  return page.evaluate(() => [...document.querySelectorAll('input:not([type=hidden]), button, select, textarea')]
    .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !(el.textContent || '').trim())
    .map((el) => el.outerHTML));
}

// A user created over the C++ REST face.
async function restCreate(username, fullName) {
  const r = await fetch(`${server.restBase}/v1/users`, { method: 'POST',
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, email: `${username}@example.com`, full_name: fullName }) });
  assert.equal(r.status, 201);
  return r.json();
}

const shot = (page, name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });

describe('console in Chromium', () => {
  let userId;
  let username;

  test('signs in with an admin token', async () => {
    const page = await newPage();
    await page.goto('/');
    assert.deepEqual(await unlabelledControls(page), []);
    await shot(page, '01-sign-in');
    await signIn(page, ADMIN_TOKEN);
    assert.match(await page.locator('.flash').innerText(), /Signed in as admin/);
    const cookies = await page.context().cookies();
    const sid = cookies.find((c) => c.name === 'polycrud.sid');
    assert.ok(sid && sid.httpOnly && sid.sameSite === 'Strict');
    assert.equal(await page.evaluate(() => document.cookie), '', 'the session cookie is invisible to scripts');
    await shot(page, '02-users');
    await page.context().close();
  });

  test('creates a user, finds it with jump-to-id and pages back and forth', async () => {
    const page = await newPage();
    await signIn(page, ADMIN_TOKEN);
    // One user older than ours, so the page of the jump has a Previous.
    const older = await restCreate(unique('older'), 'Older Neighbour');
    username = unique('browser');
    userId = await createUser(page, username, 'Zoë Ångström 😀');
    assert.match(await page.locator('.flash').innerText(), new RegExp(`User ${username} created`));
    assert.equal(await page.locator('h1').innerText(), `${username} #${userId}`);
    // Neighbours (over the REST face), so the list shows more than one row.
    for (const [name, fullName] of [['ada', 'Ada Lovelace'], ['grace', 'Grace Hopper'], ['linus', "Linus O'Torvalds"]]) {
      await restCreate(unique(name), fullName);
    }
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByLabel('Jump to id').fill(userId);
    await page.getByRole('button', { name: 'Go' }).click();
    const firstRow = page.locator('tbody tr').first();
    assert.equal(await firstRow.locator('td[data-label=Username]').innerText(), username);
    assert.equal(await firstRow.locator('td[data-label="Full name"]').innerText(), 'Zoë Ångström 😀');
    assert.equal(await page.locator('tbody tr').count(), 4);
    assert.deepEqual(await unlabelledControls(page), []);
    await shot(page, '03-find');
    // Previous is keyset paging (a ?before= link, not browser history): with
    // one user a page, it shows exactly the older user, and Next comes back.
    await page.goto(`/users?from=${userId}&limit=1`);
    await page.getByRole('link', { name: '← Previous' }).click();
    await page.waitForURL(/[?&]before=/);
    assert.deepEqual(await page.locator('td[data-label=Id]').allInnerTexts(), [String(older.id)]);
    await shot(page, '03b-previous');
    await page.getByRole('link', { name: 'Next →' }).click();
    await page.waitForURL(/[?&]after=/);
    assert.deepEqual(await page.locator('td[data-label=Id]').allInnerTexts(), [userId]);
    await page.goto(`/users?from=${userId}`);
    await firstRow.getByRole('link', { name: username }).click();
    await page.waitForURL(`**/users/${userId}`);
    await page.context().close();
  });

  test('edits a user', async () => {
    const page = await newPage();
    await signIn(page, ADMIN_TOKEN);
    await page.goto(`/users/${userId}`);
    await page.getByRole('link', { name: 'Edit' }).click();
    assert.deepEqual(await unlabelledControls(page), []);
    await page.getByLabel('Full name').fill('Edited in the browser');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.waitForURL(`**/users/${userId}`);
    assert.match(await page.locator('.flash').innerText(), /Changes saved/);
    assert.match(await page.locator('dl.fields').innerText(), /Edited in the browser/);
    await shot(page, '04-edited');
    await page.context().close();
  });

  test('shows a version conflict from a second session with the fresh values', async () => {
    const first = await newPage();
    const second = await newPage();
    await signIn(first, ADMIN_TOKEN);
    await signIn(second, ADMIN_TOKEN);
    await first.goto(`/users/${userId}/edit`);
    await second.goto(`/users/${userId}/edit`);
    await second.getByLabel('Full name').fill('Saved by the second session');
    await second.getByRole('button', { name: 'Save changes' }).click();
    await second.waitForURL(`**/users/${userId}`);
    await first.getByLabel('Full name').fill('Lost by the first session');
    await first.getByRole('button', { name: 'Save changes' }).click();
    const alert = first.locator('.conflict');
    await alert.waitFor();
    assert.match(await alert.innerText(), /Someone else changed this user meanwhile/);
    assert.match(await alert.innerText(), /Lost by the first session/);
    assert.equal(await first.getByLabel('Full name').inputValue(), 'Saved by the second session');
    await shot(first, '05-conflict');
    await first.goto(`/users/${userId}`);
    assert.match(await first.locator('dl.fields').innerText(), /Saved by the second session/);
    await first.context().close();
    await second.context().close();
  });

  test('finds a user from the search box with the keyboard alone', async () => {
    const page = await newPage();
    await signIn(page, ADMIN_TOKEN);
    await page.goto('/users');
    const box = page.getByRole('searchbox', { name: 'Search' });
    await box.focus();
    await page.keyboard.type(username.toUpperCase());
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/users\?q=/);
    assert.match(await page.locator('.notice').innerText(), /users? whose username or e-mail starts with/);
    await page.getByRole('link', { name: username }).focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(new RegExp(`/users/${userId}$`));
    await shot(page, '06-search');
    await page.context().close();
  });

  test('works on a phone-sized screen', async () => {
    const page = await newPage({ width: 390, height: 844 });
    await signIn(page, ADMIN_TOKEN);
    await page.goto(`/users?from=${userId}`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no horizontal scrolling (overflow ${overflow}px)`);
    assert.ok(await page.getByRole('link', { name: username }).isVisible());
    await shot(page, '06-phone');
    await page.context().close();
  });

  test('deletes a user after confirmation', async () => {
    const page = await newPage();
    await signIn(page, ADMIN_TOKEN);
    await page.goto(`/users/${userId}`);
    await page.getByRole('link', { name: 'Delete…' }).click();
    assert.match(await page.locator('h1').innerText(), new RegExp(`Delete ${username}\\?`));
    await shot(page, '07-delete-confirm');
    await page.getByRole('button', { name: `Delete user ${userId}` }).click();
    await page.waitForURL('**/users');
    assert.match(await page.locator('.flash').innerText(), new RegExp(`User ${userId} deleted`));
    const response = await page.goto(`/users/${userId}`);
    assert.equal(response.status(), 404);
    assert.match(await page.locator('.error').innerText(), new RegExp(`User ${userId} does not exist`));
    await page.context().close();
  });

  test('signs out', async () => {
    const page = await newPage();
    await signIn(page, ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL('**/signin?signed_out=1');
    assert.match(await page.locator('.flash').innerText(), /signed out/);
    await page.goto('/users');
    assert.match(page.url(), /\/signin$/);
    await shot(page, '08-signed-out');
    await page.context().close();
  });

  test('gives a reader token a read-only console', async () => {
    const admin = await newPage();
    await signIn(admin, ADMIN_TOKEN);
    const id = await createUser(admin, unique('reader'));
    await admin.context().close();
    const page = await newPage();
    await signIn(page, READER_TOKEN);
    assert.match(await page.locator('.flash').innerText(), /read-only/);
    assert.equal(await page.getByRole('link', { name: 'New user' }).count(), 0);
    await page.goto(`/users/${id}`);
    assert.equal(await page.getByRole('link', { name: 'Edit' }).count(), 0);
    assert.equal(await page.getByRole('link', { name: 'Delete…' }).count(), 0);
    const response = await page.goto(`/users/${id}/edit`);
    assert.equal(response.status(), 403);
    assert.match(await page.locator('.error').innerText(), /read-only/);
    await shot(page, '09-reader');
    await page.context().close();
  });
});

// The console over HTTPS, with Thrift over TLS behind it. Chromium trusts
// the console's certificate by its public key (the base64 SHA-256 of its
// SubjectPublicKeyInfo) and nothing else of the private CA.
describe('console over HTTPS in Chromium', () => {
  let tlsServer;
  let tlsWeb;
  let tlsBrowser;

  before(async () => {
    const certs = makeTls('browser');
    tlsServer = await startServer('browser-tls', { env: { POLYCRUD_TLS_CERT: certs.serverCert, POLYCRUD_TLS_KEY: certs.serverKey } });
    tlsWeb = await startWeb('browser-tls', tlsServer.thriftPort, ['--tls-cert', certs.serverCert, '--tls-key', certs.serverKey,
      '--thrift-tls-ca', certs.ca]);
    // The first certificate of server.pem is the console's own.
    const spki = new crypto.X509Certificate(fs.readFileSync(certs.serverCert)).publicKey.export({ type: 'spki', format: 'der' });
    const pin = crypto.createHash('sha256').update(spki).digest('base64');
    tlsBrowser = await chromium.launch({ executablePath: CHROMIUM, timeout: 60000,
      args: [...CHROMIUM_ARGS, `--ignore-certificate-errors-spki-list=${pin}`] });
  });

  after(async () => {
    if (tlsBrowser) await tlsBrowser.close();
    if (tlsWeb) await tlsWeb.stop();
    if (tlsServer) await tlsServer.stop();
  });

  test('signs in and creates a user over HTTPS with a Secure session cookie', async () => {
    assert.match(tlsWeb.base, /^https:\/\//);
    const context = await tlsBrowser.newContext({ viewport: { width: 1100, height: 800 }, baseURL: tlsWeb.base });
    const page = await context.newPage();
    page.setDefaultTimeout(15000);
    openPages.add(page);
    context.on('close', () => openPages.delete(page));
    const response = await page.goto('/');
    assert.equal(response.status(), 200);
    assert.match(page.url(), /^https:\/\/127\.0\.0\.1:\d+\/$/);
    assert.ok(await page.getByLabel('Bearer token').isVisible());
    const security = await response.securityDetails();
    assert.ok(['TLS 1.2', 'TLS 1.3'].includes(security.protocol), security.protocol);
    await signIn(page, ADMIN_TOKEN);
    assert.match(await page.locator('.flash').innerText(), /Signed in as admin/);
    const sid = (await context.cookies()).find((c) => c.name === 'polycrud.sid');
    assert.ok(sid && sid.secure && sid.httpOnly && sid.sameSite === 'Strict', JSON.stringify(sid));
    const username = unique('https');
    const id = await createUser(page, username, 'Über HTTPS');
    assert.match(await page.locator('.flash').innerText(), new RegExp(`User ${username} created`));
    assert.match(page.url(), new RegExp(`^https://127\\.0\\.0\\.1:\\d+/users/${id}$`));
    await shot(page, '10-https');
    await context.close();
  });

  test('is refused by a Chromium that does not trust its certificate', async () => {
    const context = await browser.newContext({ baseURL: tlsWeb.base });
    const page = await context.newPage();
    try {
      await assert.rejects(page.goto('/signin'), /net::ERR_CERT_AUTHORITY_INVALID/);
    } finally {
      await context.close();
    }
  });
});
