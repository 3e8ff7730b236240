// The console over plain HTTP against a real polycrud-server: sign-in and
// roles, session cookie flags, CSRF, security headers, rate limiting, body
// limits, error pages, keyset paging both ways, read-only enforcement,
// sign-out, an unreachable service, writes whose answer never comes, --help,
// JSON request logs, and SIGTERM with a request in flight.
'use strict';

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
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
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'none'/, 'the console runs no script at all');
    assert.match(csp, /style-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /object-src 'none'/);
    assert.match(csp, /font-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /https:|data:|unsafe/, 'nothing but this origin');
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
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
    assert.doesNotMatch(wrong.text, /not-a-token/, 'a refused token is not echoed');
    const forged = await s.post('/signin', { token: ADMIN_TOKEN, _csrf: 'forged' });
    assert.equal(forged.status, 403);
    assert.equal((await s.get('/users')).status, 303, 'still signed out');
  });

  it('rate-limits sign-in attempts per address', async () => {
    const limited = await startWeb('console-api-ratelimit', server.thriftPort, ['--signin-limit', '3']);
    try {
      // Successful sign-ins do not count...
      for (let i = 0; i < 4; i++) assert.equal((await new Session(limited.base).signIn(ADMIN_TOKEN)).status, 303, `sign-in ${i}`);
      // ...refused ones do.
      const s = new Session(limited.base);
      for (let i = 0; i < 3; i++) assert.equal((await s.signIn('wrong')).status, 401);
      const fourth = await s.signIn(ADMIN_TOKEN);
      assert.equal(fourth.status, 429);
      const retryAfter = Number(fourth.headers.get('retry-after'));
      assert.ok(retryAfter > 0 && retryAfter <= 300, `Retry-After ${retryAfter} within the 5-minute window`);
      assert.match(fourth.text, /Too many refused sign-in attempts from this address\. Try again in \d+ (seconds|minutes)\./);
      assert.match(fourth.text, /name="_csrf" value="[^"]+"/, 'the form still works once the wait is over');
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

  it('escapes user fields created elsewhere on every page', async () => {
    const s = new Session(web.base);
    await s.signIn(ADMIN_TOKEN);
    const attacks = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "' autofocus onfocus='alert(1)"];
    for (const fullName of attacks) {
      const username = unique('xss');
      const r = await fetch(`${server.restBase}/v1/users`, { method: 'POST',
        headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ username, email: `${username}@example.com`, full_name: fullName }) });
      assert.equal(r.status, 201);
      const { id } = await r.json();
      for (const path of [`/users?from=${id}`, `/users/${id}`, `/users/${id}/edit`, `/users/${id}/delete`]) {
        const page = await s.get(path);
        assert.equal(page.status, 200, path);
        assert.ok(!page.text.includes(fullName), `${path} shows ${fullName} raw`);
        assert.doesNotMatch(page.text, /<script>|<img|' autofocus/, path);
      }
      const detail = await s.get(`/users/${id}`);
      const escaped = fullName.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
      assert.ok(detail.text.includes(escaped), 'shown escaped');
    }
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
    assert.match(dup.text, /<p id="username-error" class="field-error">Another user already has this username\.<\/p>/);
    const dupMail = await s.post('/users', { username: unique('other'), email: `${name.toUpperCase()}@EXAMPLE.com`, full_name: 'X' });
    assert.equal(dupMail.status, 409);
    assert.match(dupMail.text, /<p id="email-error" class="field-error">Another user already has this e-mail address/);
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
    assert.match(invalid.text, /give a whole number from 1/);
  });

  // Ids of the list rows, and the pager's links (null when disabled).
  const rowIds = (t) => [...t.matchAll(/<td data-label="Id"><a href="\/users\/(\d+)">/g)].map((m) => m[1]);
  const pager = (t) => {
    const link = (rel) => {
      const m = new RegExp(`<a rel="${rel}" href="([^"]+)"`).exec(t);
      return m ? m[1].replace(/&amp;/g, '&') : null;
    };
    return { prev: link('prev'), next: link('next') };
  };

  it('pages backward by keyset from any page: after a jump, across deleted ids, to a disabled first page', async () => {
    const s = new Session(web.base);
    await s.signIn(ADMIN_TOKEN);
    const ids = [];
    for (let i = 0; i < 7; i++) ids.push(await createUser(s, unique('back')));
    for (const gone of [ids[2], ids[3]]) {
      await s.get(`/users/${gone}/delete`);
      assert.equal((await s.post(`/users/${gone}/delete`)).status, 303);
    }
    // Jump to the newest users: the last page, Next disabled.
    const last = await s.get(`/users?from=${ids[5]}&limit=2`);
    assert.deepEqual(rowIds(last.text), [ids[5], ids[6]]);
    assert.equal(pager(last.text).next, null, 'Next is disabled on the last page');
    assert.match(last.text, /<span class="disabled" aria-disabled="true">Next →<\/span>/);
    // Previous right after the jump: the two live users just below, skipping the deleted ones.
    const p1 = await s.get(pager(last.text).prev);
    assert.equal(p1.status, 200);
    assert.deepEqual(rowIds(p1.text), [ids[1], ids[4]]);
    // Next from there comes back to the jumped-to page.
    assert.deepEqual(rowIds((await s.get(pager(p1.text).next)).text), [ids[5], ids[6]]);
    // One more step back ends with the oldest of ours; each step shows lower ids.
    const p2 = await s.get(pager(p1.text).prev);
    const p2ids = rowIds(p2.text);
    assert.equal(p2ids[p2ids.length - 1], ids[0]);
    assert.ok(p2ids.length === 2 || pager(p2.text).prev === null, 'a full page unless it is the first');
    const p3 = pager(p2.text).prev ? rowIds((await s.get(pager(p2.text).prev)).text) : [];
    assert.ok(p3.every((id) => BigInt(id) < BigInt(p2ids[0])), 'Previous shows lower ids');
    // The first page: Previous disabled.
    const firstPage = await s.get('/users?limit=2');
    assert.equal(pager(firstPage.text).prev, null);
    assert.match(firstPage.text, /<span class="disabled" aria-disabled="true">← Previous<\/span>/);
    const firstId = rowIds(firstPage.text)[0];
    assert.equal(pager((await s.get(`/users?before=${firstId}&limit=2`)).text).prev, null, 'nothing precedes the first user');
    assert.equal(pager((await s.get(`/users?from=${firstId}&limit=2`)).text).prev, null, 'a jump to the first user is the first page');
    // A jump to a deleted id says so and shows the next live ones.
    const jump = await s.get(`/users?from=${ids[2]}&limit=2`);
    assert.equal(jump.status, 200);
    assert.match(jump.text, new RegExp(`There is no user ${ids[2]}; the list continues with the next id, ${ids[4]}\\.`));
    assert.deepEqual(rowIds(jump.text), [ids[4], ids[5]]);
    assert.deepEqual(rowIds((await s.get(pager(jump.text).prev)).text), [ids[0], ids[1]]);
    // Beyond the newest user: a clear message, and Previous leads to the last page.
    const beyond = await s.get(`/users?from=${BigInt(ids[6]) + 1000n}&limit=2`);
    assert.match(beyond.text, /There are no users with id \d+ or above\./);
    assert.deepEqual(rowIds((await s.get(pager(beyond.text).prev)).text), [ids[5], ids[6]]);
    // Broken links are a clear 400, never a silent first page.
    for (const bad of ['after=x', 'before=-1', 'from=0', 'from=9223372036854775808']) {
      assert.equal((await s.get(`/users?${bad}`)).status, 400, bad);
    }
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
    // Signing out again (an expired session, a second tab) is no "Form expired" error.
    const again = await replay.request('POST', '/signout', { form: {} });
    assert.equal(again.status, 303);
    assert.equal(again.location, '/signin?signed_out=1');
  });
});

describe('service down while signed in', () => {
  it('shows a clear 503 page with a way to retry, and keeps the input of a form', async () => {
    const own = await startServer('console-api-down');
    const lonely = await startWeb('console-api-down', own.thriftPort, ['--thrift-connect-timeout-ms', '500']);
    try {
      const s = new Session(lonely.base);
      assert.equal((await s.signIn(ADMIN_TOKEN)).status, 303);
      const id = await createUser(s, unique('down'));
      await s.get(`/users/${id}/edit`);
      await own.stop();
      const list = await s.get('/users?limit=5');
      assert.equal(list.status, 503);
      assert.ok(Number(list.headers.get('retry-after')) >= 1);
      assert.match(list.text, /<h1>Service unavailable<\/h1>/);
      assert.match(list.text, /service is unavailable .*Try again in \d+ s\./);
      assert.match(list.text, /<a href="\/users\?limit=5">Try again<\/a>/);
      assert.doesNotMatch(list.text, /at .*\.js:\d+|ECONNREFUSED|127\.0\.0\.1/, 'no stack trace or internals');
      const name = unique('kept');
      const create = await s.post('/users', { username: name, email: `${name}@example.com`, full_name: 'Kept <input>' });
      assert.equal(create.status, 503);
      assert.match(create.text, /Nothing was created\. The service is unavailable/);
      assert.match(create.text, new RegExp(`value="${name}"`));
      assert.match(create.text, /value="Kept &lt;input&gt;"/);
      const edit = await s.post(`/users/${id}/edit`, { version: '1', email: `${name}@example.org`, full_name: 'Kept edit' });
      assert.equal(edit.status, 503);
      assert.match(edit.text, /Nothing was saved\. The service is unavailable/);
      assert.match(edit.text, /value="Kept edit"/);
      assert.match(edit.text, /name="version" value="1"/, 'the expected version survives');
      // A trick path never becomes an off-site "Try again" link.
      const raw = await new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: lonely.port, path: '//evil.example/users',
          headers: { Cookie: [...s.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } }, (res) => {
          let text = '';
          res.on('data', (d) => { text += d; });
          res.on('end', () => resolve(text));
        });
        req.on('error', reject);
        req.end();
      });
      assert.doesNotMatch(raw, /href="\/\//);
    } finally {
      assert.equal(await lonely.stop(), 0);
      await own.stop();
    }
  });
});

// A Thrift proxy in front of the server that passes every call on but can
// swallow the reply of a chosen method: the call runs on the server, the
// console never hears back and times out. Binary protocol, framed: each
// reply is a 4-byte length, then the message, whose method name follows
// the 4-byte version word and the name's 4-byte length.
async function replySwallowingProxy(upstreamPort) {
  const swallow = new Set();
  const sockets = new Set();
  const proxy = net.createServer((client) => {
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    for (const sock of [client, upstream]) {
      sockets.add(sock);
      sock.on('close', () => {
        sockets.delete(sock);
        client.destroy();
        upstream.destroy();
      });
      sock.on('error', () => {});
    }
    client.pipe(upstream);
    let buffer = Buffer.alloc(0);
    upstream.on('data', (data) => {
      buffer = Buffer.concat([buffer, data]);
      while (buffer.length >= 4 && buffer.length >= 4 + buffer.readUInt32BE(0)) {
        const frame = buffer.subarray(0, 4 + buffer.readUInt32BE(0));
        buffer = buffer.subarray(frame.length);
        const name = frame.subarray(12, 12 + frame.readUInt32BE(8)).toString();
        if (swallow.delete(name)) continue;
        client.write(frame);
      }
    });
  });
  await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
  return {
    port: proxy.address().port,
    swallowNextReplyOf: (method) => swallow.add(method),
    close: () => {
      for (const sock of sockets) sock.destroy();
      proxy.close();
    },
  };
}

describe('writes whose answer never comes', () => {
  it('say the outcome is unknown and show the user as it is now', async () => {
    const proxy = await replySwallowingProxy(server.thriftPort);
    const slow = await startWeb('console-api-lost-answer', proxy.port, ['--thrift-timeout-ms', '1000']);
    try {
      const s = new Session(slow.base);
      assert.equal((await s.signIn(ADMIN_TOKEN)).status, 303);
      const name = unique('lost');
      const id = await createUser(s, name);

      // The update runs on the server; its answer is lost.
      await s.get(`/users/${id}/edit`);
      proxy.swallowNextReplyOf('updateUser');
      const edit = await s.post(`/users/${id}/edit`, { version: '1', email: `${name}@example.org`, full_name: 'Saved unseen' });
      assert.equal(edit.status, 503);
      assert.doesNotMatch(edit.text, /Nothing was saved/);
      assert.match(edit.text, /The service did not answer, so it is not known whether your changes were saved\./);
      // The user as read again: the update's new version and values.
      assert.match(edit.text, /Read again just now, the user is at version 2\s+\(you edited version 1\)/);
      assert.match(edit.text, /name="version" value="2"/);
      assert.match(edit.text, /id="full_name" name="full_name" type="text" value="Saved unseen"/);

      // A create has no id to read back: the page points to the list.
      const other = unique('lost');
      proxy.swallowNextReplyOf('createUser');
      const create = await s.post('/users', { username: other, email: `${other}@example.com`, full_name: 'Created unseen' });
      assert.equal(create.status, 503);
      assert.doesNotMatch(create.text, /Nothing was created/);
      assert.match(create.text, new RegExp(`The service did not answer, so user ${other} may or may not have been created\.`));
      assert.match(create.text, /Check the <a href="\/users">users list<\/a>/);
      assert.match(create.text, new RegExp(`value="${other}"`), 'the form keeps the input');

      // A delete that went through: the user is read again and is gone.
      await s.get(`/users/${id}/delete`);
      proxy.swallowNextReplyOf('deleteUser');
      const del = await s.post(`/users/${id}/delete`);
      assert.equal(del.status, 303);
      assert.equal(del.location, '/users');
      const list = await s.get('/users');
      assert.match(list.text, new RegExp(`The service did not answer, but user ${id} no longer exists: it was deleted\.`));
    } finally {
      assert.equal(await slow.stop(), 0);
      proxy.close();
    }
  });
});

describe('operations', () => {
  const bin = path.resolve(__dirname, '..', 'bin', 'polycrud-web.js');

  it('prints --help with every flag and refuses unknown ones', () => {
    const helpRun = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    assert.equal(helpRun.status, 0);
    for (const flag of ['--port', '--thrift-host', '--thrift-port', '--thrift-timeout-ms', '--max-body-bytes', '--signin-limit',
      '--secure-cookie', '--shutdown-grace-ms', '--log-level', 'POLYCRUD_WEB_PORT']) {
      assert.ok(helpRun.stdout.includes(flag), flag);
    }
    const bad = spawnSync(process.execPath, [bin, '--no-such-flag'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /polycrud-web: .*no-such-flag/);
    const badPort = spawnSync(process.execPath, [bin, '--port', '70000'], { encoding: 'utf8' });
    assert.equal(badPort.status, 2);
  });

  it('logs one JSON line per request with its id, status and duration, and never a token', async () => {
    const s = new Session(web.base);
    await s.signIn(ADMIN_TOKEN);
    const r = await s.get('/users/1?secret=query-text');
    const reqId = r.headers.get('x-request-id');
    assert.match(reqId, /^[0-9a-f-]{36}$/);
    const api = await fetch(`${web.base}/api/v1/users/1`, { headers: { Authorization: `Bearer ${READER_TOKEN}` } });
    const apiId = api.headers.get('x-request-id');
    await api.text();
    let lines = [];
    for (let i = 0; i < 50; i++) { // the line is written when the answer is complete
      lines = fs.readFileSync(web.logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
      if (lines.some((l) => l.req_id === apiId && l.msg === 'request')) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    const line = lines.find((l) => l.req_id === reqId && l.msg === 'request');
    assert.ok(line, 'a request line for the page');
    assert.equal(line.method, 'GET');
    assert.equal(line.path, '/users/1', 'the path without its query');
    assert.equal(line.status, r.status);
    assert.equal(typeof line.ms, 'number');
    assert.ok(lines.find((l) => l.req_id === apiId && l.path === '/api/v1/users/1'));
    const text = fs.readFileSync(web.logFile, 'utf8');
    for (const secret of [ADMIN_TOKEN, READER_TOKEN, 'query-text', s.cookies.get('polycrud.sid')]) {
      assert.ok(!text.includes(secret), 'secrets and query strings stay out of the log');
    }
  });

  it('on SIGTERM finishes the request in flight, refuses new connections and exits 0 without waiting for keep-alive', async () => {
    // A Thrift port that accepts and never answers: the call stays in flight until its timeout.
    const sockets = new Set();
    const silent = net.createServer((sock) => {
      sock.resume();
      sockets.add(sock);
    });
    await new Promise((r) => silent.listen(0, '127.0.0.1', r));
    const stopping = await startWeb('console-api-sigterm', silent.address().port, ['--thrift-timeout-ms', '1500']);
    try {
      const agent = new http.Agent({ keepAlive: true });
      const answer = new Promise((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: stopping.port, path: '/api/v1/users/1', agent,
          headers: { Authorization: `Bearer ${READER_TOKEN}` } }, (res) => {
          let body = '';
          res.on('data', (d) => { body += d; });
          res.on('end', () => resolve({ status: res.statusCode, connection: res.headers.connection, body }));
        }).on('error', reject);
      });
      await new Promise((r) => setTimeout(r, 300));
      const started = Date.now();
      const exited = new Promise((r) => stopping.child.once('exit', (code) => r(code)));
      stopping.child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 200));
      await assert.rejects(fetch(`${stopping.base}/healthz`), 'no new connections while stopping');
      const res = await answer;
      assert.equal(res.status, 503, 'the request in flight gets its answer');
      assert.equal(JSON.parse(res.body).code, 'UNAVAILABLE');
      assert.equal(await exited, 0);
      assert.ok(Date.now() - started < 3000, `exits once the request is done (${Date.now() - started} ms), not after keep-alive`);
      agent.destroy();
    } finally {
      await stopping.stop();
      for (const sock of sockets) sock.destroy();
      silent.close();
    }
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

describe('search', () => {
  it('finds users by the start of a username or e-mail, with a plain form', async () => {
    const admin = new Session(web.base);
    await admin.signIn(ADMIN_TOKEN);
    // e.g. look_a1b2c3_7x: the x ends it, so look_a1b2c3_70x is no match.
    const base = `${unique('look')}x`;
    const ids = [];
    for (const suffix of ['b', 'a']) ids.push(await createUser(admin, `${base}${suffix}`));
    const s = new Session(web.base);
    await s.signIn(READER_TOKEN);
    const list = await s.get('/users');
    assert.match(list.text, /<form method="get" action="\/users" class="search" role="search"/);
    assert.match(list.text, /<label for="q">/);
    const found = await s.get(`/users?q=${encodeURIComponent(base.toUpperCase())}`);
    assert.equal(found.status, 200, found.text);
    assert.match(found.text, /2 users whose username or e-mail starts with/);
    const a = found.text.indexOf(`${base}a`);
    const b = found.text.indexOf(`${base}b`);
    assert.ok(a > 0 && b > a, 'by username');
    assert.match(found.text, new RegExp(`value="${base.toUpperCase()}"`), 'the box keeps the query');
    const one = await s.get(`/users?q=${encodeURIComponent(`${base}a@`)}`);
    assert.match(one.text, /1 user whose username or e-mail starts with/);
    const none = await s.get(`/users?q=${encodeURIComponent(`${base}zz`)}`);
    assert.equal(none.status, 200);
    assert.match(none.text, /No user&#39;s username or e-mail starts with/);
    const bad = await s.get('/users?q=a%20b');
    assert.equal(bad.status, 400);
    assert.match(bad.text, /Search: prefix may not contain spaces/);
    const empty = await s.get('/users?q=%20');
    assert.equal(empty.status, 400);
    assert.match(empty.text, /Type the start of a username or e-mail/);
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
