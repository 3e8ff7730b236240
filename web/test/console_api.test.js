// The console over plain HTTP against a real polycrud-server: sign-in and
// roles, session cookie flags, CSRF, security headers, rate limiting, body
// limits, error pages, read-only enforcement, sign-out, an unreachable
// service, and a clean SIGTERM.
'use strict';

const assert = require('node:assert/strict');
const { after, before, describe, it } = require('node:test');
const { ADMIN_TOKEN, READER_TOKEN, freePort, startServer, startWeb, unique } = require('./support/stack');
const { Session } = require('./support/browser_session');

let server;
let web;

before(async () => {
  server = await startServer('console-api');
  web = await startWeb('console-api', server.thriftPort);
});

after(async () => {
  if (web) assert.equal(await web.stop(), 0, 'polycrud-web exits 0 on SIGTERM');
  if (server) await server.stop();
});

async function createUser(s, username) {
  await s.get('/users/new');
  const r = await s.post('/users', { username, email: `${username}@example.com`, full_name: 'Console Test' });
  assert.equal(r.status, 303, r.text);
  const id = /^\/users\/(\d+)$/.exec(r.location)[1];
  return id;
}

describe('sign-in', () => {
  it('sends visitors to the sign-in page, with security headers and no external assets', async () => {
    const s = new Session(web.base);
    const page = await s.get('/');
    assert.equal(page.status, 200);
    assert.match(page.text, /<label for="token">Bearer token<\/label>/);
    const csp = page.headers.get('content-security-policy');
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(page.headers.get('cache-control'), 'no-store');
    assert.equal(page.headers.get('x-powered-by'), null);
    assert.doesNotMatch(page.text, /(src|href)="(https?:)?\/\//, 'every asset is served locally');
    const css = await s.get('/assets/console.css');
    assert.equal(css.status, 200);
    assert.match(css.headers.get('content-type'), /text\/css/);
    const missing = await s.get('/assets/missing.css');
    assert.equal(missing.status, 404);
    assert.doesNotMatch(missing.text, /\/web\/|ENOENT/, 'no file paths leak');
  });

  it('binds the session to an httpOnly, SameSite=Strict cookie and renews it on sign-in', async () => {
    const s = new Session(web.base);
    const page = await s.get('/signin');
    assert.equal(page.setCookies.length, 1);
    assert.match(page.setCookies[0], /HttpOnly/);
    assert.match(page.setCookies[0], /SameSite=Strict/);
    const before = s.cookies.get('polycrud.sid');
    const r = await s.post('/signin', { token: ADMIN_TOKEN });
    assert.equal(r.status, 303);
    assert.equal(r.location, '/users');
    assert.notEqual(s.cookies.get('polycrud.sid'), before, 'a new session id after sign-in');
    const list = await s.get('/users');
    assert.equal(list.status, 200);
    assert.match(list.text, /Signed in as admin/);
    assert.match(list.text, /href="\/users\/new"/);
    assert.doesNotMatch(list.text, new RegExp(ADMIN_TOKEN), 'the token never reaches the browser');
  });

  it('refuses a wrong token, and a sign-in without the CSRF token', async () => {
    const s = new Session(web.base);
    const wrong = await s.signIn('not-a-token');
    assert.equal(wrong.status, 401);
    assert.match(wrong.text, /does not accept this token/);
    const forged = await s.post('/signin', { token: ADMIN_TOKEN, _csrf: 'forged' });
    assert.equal(forged.status, 403);
    assert.equal((await s.get('/users')).status, 303, 'still signed out');
  });

  it('rate-limits sign-in attempts per address', async () => {
    const limited = await startWeb('console-api-ratelimit', server.thriftPort, ['--signin-limit', '3']);
    try {
      const s = new Session(limited.base);
      for (let i = 0; i < 3; i++) assert.equal((await s.signIn('wrong')).status, 401);
      const fourth = await s.signIn(ADMIN_TOKEN);
      assert.equal(fourth.status, 429);
      assert.ok(Number(fourth.headers.get('retry-after')) > 0);
      assert.match(fourth.text, /Too many sign-in attempts/);
    } finally {
      assert.equal(await limited.stop(), 0);
    }
  });
});

describe('admin console', () => {
  it('creates, shows, edits and deletes a user through forms', async () => {
    const s = new Session(web.base);
    await s.signIn(ADMIN_TOKEN);
    const name = unique('form');
    const id = await createUser(s, name);
    const detail = await s.get(`/users/${id}`);
    assert.equal(detail.status, 200);
    assert.match(detail.text, new RegExp(`User ${name} created`));
    assert.match(detail.text, /<dt>Version<\/dt><dd>1<\/dd>/);
    await s.get(`/users/${id}/edit`);
    const saved = await s.post(`/users/${id}/edit`, { version: '1', email: `${name}@example.org`, full_name: 'Edited <b>' });
    assert.equal(saved.status, 303);
    const after = await s.get(`/users/${id}`);
    assert.match(after.text, /Edited &lt;b&gt;/, 'output is escaped');
    assert.match(after.text, /<dt>Version<\/dt><dd>2<\/dd>/);
    await s.get(`/users/${id}/delete`);
    const gone = await s.post(`/users/${id}/delete`);
    assert.equal(gone.status, 303);
    const missing = await s.get(`/users/${id}`);
    assert.equal(missing.status, 404);
    assert.match(missing.text, new RegExp(`User ${id} does not exist`));
  });

  it('shows field errors, duplicates and version conflicts instead of overwriting', async () => {
    const s = new Session(web.base);
    await s.signIn(ADMIN_TOKEN);
    const bad = await s.post('/users', { username: 'Bad Name', email: 'x@example.com', full_name: 'X' });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /id="username-error"/);
    assert.match(bad.text, /aria-invalid="true"/);
    const name = unique('conf');
    const id = await createUser(s, name);
    const dup = await s.post('/users', { username: name, email: `other-${name}@example.com`, full_name: 'X' });
    assert.equal(dup.status, 409);
    assert.match(dup.text, /already has this username or e-mail/);
    // Someone else saves version 1 first; this save of version 1 must not win.
    await s.post(`/users/${id}/edit`, { version: '1', email: `${name}@example.com`, full_name: 'First writer' });
    const late = await s.post(`/users/${id}/edit`, { version: '1', email: `${name}@example.com`, full_name: 'Second writer' });
    assert.equal(late.status, 409);
    assert.match(late.text, /Someone else changed this user meanwhile/);
    assert.match(late.text, /value="First writer"/, 'the form holds the fresh values');
    assert.match(late.text, /Second writer/, 'the lost input stays visible');
    assert.match(late.text, /name="version" value="2"/);
    const detail = await s.get(`/users/${id}`);
    assert.match(detail.text, /First writer/);
  });

  it('refuses state changes without the session\'s CSRF token', async () => {
    const s = new Session(web.base);
    await s.signIn(ADMIN_TOKEN);
    const name = unique('csrf');
    const r = await s.post('/users', { username: name, email: `${name}@example.com`, full_name: 'X', _csrf: 'x'.repeat(43) });
    assert.equal(r.status, 403);
    assert.match(r.text, /Form expired/);
    const none = await s.request('POST', '/users', { form: { username: name, email: `${name}@example.com`, full_name: 'X' } });
    assert.equal(none.status, 403);
    assert.equal((await s.get(`/users?from=1`)).text.includes(name), false, 'nothing was created');
  });

  it('pages through users with next and previous, and jumps to an id', async () => {
    const s = new Session(web.base);
    await s.signIn(ADMIN_TOKEN);
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await createUser(s, unique('pg')));
    const first = await s.get(`/users?from=${ids[0]}&limit=2`);
    assert.equal(first.status, 200);
    const rows = (t) => [...t.matchAll(/<td data-label="Id"><a href="\/users\/(\d+)">/g)].map((m) => m[1]);
    assert.deepEqual(rows(first.text), ids.slice(0, 2));
    const next = /<a rel="next" href="([^"]+)"/.exec(first.text)[1].replace(/&amp;/g, '&');
    const second = await s.get(next);
    assert.equal(rows(second.text)[0], ids[2]);
    const prev = /<a rel="prev" href="([^"]+)"/.exec(second.text)[1].replace(/&amp;/g, '&');
    assert.deepEqual(rows((await s.get(prev)).text), ids.slice(0, 2));
    const invalid = await s.get('/users?from=abc');
    assert.equal(invalid.status, 400);
    assert.match(invalid.text, /positive whole number/);
  });

  it('answers oversized forms with 413', async () => {
    const s = new Session(web.base);
    await s.signIn(ADMIN_TOKEN);
    const r = await s.post('/users', { username: 'x', email: 'x', full_name: 'y'.repeat(20000) });
    assert.equal(r.status, 413);
  });

  it('signs out: the old session cookie no longer works', async () => {
    const s = new Session(web.base);
    await s.signIn(ADMIN_TOKEN);
    const cookie = s.cookies.get('polycrud.sid');
    const out = await s.post('/signout');
    assert.equal(out.status, 303);
    assert.equal(out.location, '/signin?signed_out=1');
    const replay = new Session(web.base);
    replay.cookies.set('polycrud.sid', cookie);
    const r = await replay.get('/users');
    assert.equal(r.status, 303);
    assert.equal(r.location, '/signin');
  });
});

describe('reader console', () => {
  it('is read-only', async () => {
    const admin = new Session(web.base);
    await admin.signIn(ADMIN_TOKEN);
    const id = await createUser(admin, unique('ro'));
    const s = new Session(web.base);
    const r = await s.signIn(READER_TOKEN);
    assert.equal(r.status, 303);
    const list = await s.get('/users');
    assert.match(list.text, /read-only/);
    assert.doesNotMatch(list.text, /href="\/users\/new"/);
    const detail = await s.get(`/users/${id}`);
    assert.equal(detail.status, 200);
    assert.doesNotMatch(detail.text, /\/edit"/);
    for (const path of ['/users/new', `/users/${id}/edit`, `/users/${id}/delete`]) {
      assert.equal((await s.get(path)).status, 403, path);
    }
    const del = await s.post(`/users/${id}/delete`);
    assert.equal(del.status, 403);
    assert.equal((await admin.get(`/users/${id}`)).status, 200, 'the user is still there');
  });
});

describe('service unreachable', () => {
  it('answers 503 problems and clear pages, and recovers when the service is back', async () => {
    const deadPort = await freePort();
    const lonely = await startWeb('console-api-unreachable', deadPort, ['--thrift-connect-timeout-ms', '500']);
    try {
      const api = await fetch(`${lonely.base}/api/v1/users/1`, { headers: { Authorization: `Bearer ${READER_TOKEN}` } });
      assert.equal(api.status, 503);
      assert.ok(api.headers.get('retry-after'));
      const body = await api.json();
      assert.equal(body.code, 'UNAVAILABLE');
      assert.doesNotMatch(JSON.stringify(body), /127\.0\.0\.1|ECONNREFUSED/, 'no internals leak');
      assert.equal((await fetch(`${lonely.base}/readyz`)).status, 503);
      const s = new Session(lonely.base);
      const page = await s.signIn(ADMIN_TOKEN);
      assert.equal(page.status, 503);
      assert.match(page.text, /service is unavailable/);
      // The service comes up on that port: the pool reconnects on its own.
      const late = await startServer('console-api-late', { thriftPort: deadPort });
      try {
        let ready = 0;
        for (let i = 0; i < 100 && ready !== 200; i++) {
          ready = (await fetch(`${lonely.base}/readyz`)).status;
          if (ready !== 200) await new Promise((r) => setTimeout(r, 100));
        }
        assert.equal(ready, 200, 'reconnected within 10 s');
        const again = await fetch(`${lonely.base}/api/v1/users/1`, { headers: { Authorization: 'Bearer wrong' } });
        assert.equal(again.status, 401, 'answers come from the service again');
      } finally {
        await late.stop();
      }
    } finally {
      assert.equal(await lonely.stop(), 0);
    }
    assert.equal((await fetch(`${web.base}/readyz`)).status, 200);
  });
});
