// TLS both ways, with real processes: polycrud-web serving HTTPS (TLS 1.2+,
// Secure session cookies, optionally requiring client certificates) and its
// Thrift client reaching polycrud-server over TLS and mutual TLS. The
// certificates come from deploy/local/tls.sh: CA "a" signs everything meant
// to work, CA "b", made independently, plays every stranger.
'use strict';

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { after, before, describe, it } = require('node:test');
const { ADMIN_TOKEN, READER_TOKEN, makeTls, startServer, startWeb, unique } = require('./support/stack');
const { Session } = require('./support/browser_session');
const { exchange, tlsFetch } = require('./support/tls_fetch');

let a;
let b;
let server; // TLS on every face, certificate of CA a
let mutualServer; // the same, and client certificates of CA a required
let web; // HTTPS with CA a's certificate, Thrift over TLS to server

before(async () => {
  a = makeTls('a');
  b = makeTls('b');
  const tlsEnv = { POLYCRUD_TLS_CERT: a.serverCert, POLYCRUD_TLS_KEY: a.serverKey };
  server = await startServer('tls', { env: tlsEnv });
  mutualServer = await startServer('tls-mutual', { env: { ...tlsEnv, POLYCRUD_TLS_CLIENT_CA: a.ca } });
  // The variables `./polycrud up --tls` sets.
  web = await startWeb('tls', server.thriftPort, [], { env: {
    POLYCRUD_WEB_TLS_CERT: a.serverCert, POLYCRUD_WEB_TLS_KEY: a.serverKey, POLYCRUD_THRIFT_TLS_CA: a.ca } });
});

after(async () => {
  if (web) assert.equal(await web.stop(), 0, 'polycrud-web over HTTPS exits 0 on SIGTERM');
  if (server) await server.stop();
  if (mutualServer) await mutualServer.stop();
});

const trustA = () => ({ ca: fs.readFileSync(a.ca) });

// A JSON API call through the gateway at base; tls: options for the connection.
async function api(base, method, path, { tls = trustA(), token = ADMIN_TOKEN, json } = {}) {
  const headers = { Authorization: `Bearer ${token}` };
  let body;
  if (json !== undefined) {
    body = JSON.stringify(json);
    headers['Content-Type'] = 'application/json';
  }
  const r = await exchange(`${base}/api${path}`, { method, headers, body, tls });
  return { ...r, json: /json/.test(r.headers.get('content-type') || '') ? JSON.parse(r.text) : null };
}

// Creates a user through the gateway at base, reads it back and returns it.
async function createAndGet(base, tls = trustA()) {
  const username = unique('tls');
  const created = await api(base, 'POST', '/v1/users', { tls,
    json: { username, email: `${username}@example.com`, full_name: 'Over TLS' } });
  assert.equal(created.status, 201, created.text);
  assert.equal(created.json.username, username);
  const read = await api(base, 'GET', `/v1/users/${created.json.id}`, { tls, token: READER_TOKEN });
  assert.equal(read.status, 200, read.text);
  assert.equal(read.json.username, username);
  assert.equal(read.json.full_name, 'Over TLS');
  return { created, read };
}

// The gateway answers 503 UNAVAILABLE for reads and writes, and /readyz 503:
// what the console makes of a service it cannot reach.
async function assertUnreachable(base, tls) {
  const read = await api(base, 'GET', '/v1/users/1', { tls, token: READER_TOKEN });
  assert.equal(read.status, 503, read.text);
  assert.equal(read.json.code, 'UNAVAILABLE');
  assert.ok(Number(read.headers.get('retry-after')) >= 1);
  const username = unique('tlsno');
  const write = await api(base, 'POST', '/v1/users', { tls, json: { username, email: `${username}@example.com`, full_name: 'X' } });
  assert.equal(write.status, 503, write.text);
  assert.equal(write.json.code, 'UNAVAILABLE');
  assert.doesNotMatch(read.text + write.text, /SSL|certificate|127\.0\.0\.1/i, 'no internals leak');
  const ready = await exchange(`${base}/readyz`, { tls });
  assert.equal(ready.status, 503);
  assert.equal(JSON.parse(ready.text).thrift.connections, 0);
}

// The log lines of a polycrud-web with this message.
function logLines(logFile, msg) {
  return fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((l) => l.msg === msg);
}

describe('console over HTTPS', () => {
  it('answers the API over TLS 1.2+ to a client that trusts the CA, through Thrift over TLS', async () => {
    assert.match(web.base, /^https:/);
    const { created, read } = await createAndGet(web.base);
    assert.ok(['TLSv1.2', 'TLSv1.3'].includes(read.protocol), read.protocol);
    assert.equal(read.authorized, true, 'the certificate verified against the CA');
    assert.equal(created.headers.get('location'), `/api/v1/users/${created.json.id}`);
    // No HSTS unless asked for: on localhost it would pin every local port to HTTPS.
    assert.equal(read.headers.get('strict-transport-security'), null);
    // The same user on the C++ REST face, also over TLS: one server behind both.
    const rest = await exchange(`${server.restBase}/v1/users/${created.json.id}`,
      { headers: { Authorization: `Bearer ${READER_TOKEN}` }, tls: trustA() });
    assert.equal(rest.status, 200);
    assert.equal(JSON.parse(rest.text).username, created.json.username);
    const ready = await exchange(`${web.base}/readyz`, { tls: trustA() });
    assert.equal(ready.status, 200);
    assert.ok(JSON.parse(ready.text).thrift.connections >= 1);
    // TLS 1.2 exactly is served too; 1.1 is refused by the server.
    const v12 = await exchange(`${web.base}/healthz`, { tls: { ...trustA(), maxVersion: 'TLSv1.2' } });
    assert.equal(v12.status, 200);
    assert.equal(v12.protocol, 'TLSv1.2');
    await assert.rejects(exchange(`${web.base}/healthz`, { tls: { ...trustA(), minVersion: 'TLSv1', maxVersion: 'TLSv1.1' } }),
      /alert protocol version/);
  });

  it('is refused by clients that do not trust its CA', async () => {
    const untrusted = /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/;
    // The system's CAs only.
    await assert.rejects(exchange(`${web.base}/api/v1/users/1`, { headers: { Authorization: `Bearer ${READER_TOKEN}` } }),
      (err) => untrusted.test(err.code));
    // Another CA.
    await assert.rejects(exchange(`${web.base}/api/v1/users/1`, { headers: { Authorization: `Bearer ${READER_TOKEN}` },
      tls: { ca: fs.readFileSync(b.ca) } }), (err) => untrusted.test(err.code));
  });

  it('gives plain HTTP on its port no answer', async () => {
    const plain = `http://127.0.0.1:${web.port}`;
    await assert.rejects(exchange(`${plain}/api/v1/users/1`, { headers: { Authorization: `Bearer ${READER_TOKEN}` } }),
      (err) => ['ECONNRESET', 'EPIPE'].includes(err.code) || /socket hang up/.test(err.message));
    await assert.rejects(exchange(`${plain}/healthz`));
    assert.equal((await exchange(`${web.base}/healthz`, { tls: trustA() })).status, 200, 'HTTPS still served');
  });

  it('keeps the console session in a Secure cookie and signs in over HTTPS', async () => {
    const s = new Session(web.base, { fetch: tlsFetch(trustA()) });
    const page = await s.get('/signin');
    assert.equal(page.status, 200);
    assert.equal(page.setCookies.length, 1);
    assert.match(page.setCookies[0], /^polycrud\.sid=/);
    assert.match(page.setCookies[0], /; Secure(;|$)/);
    assert.match(page.setCookies[0], /; HttpOnly(;|$)/);
    assert.match(page.setCookies[0], /; SameSite=Strict(;|$)/);
    assert.match(page.headers.get('content-security-policy'), /upgrade-insecure-requests/);
    const r = await s.signIn(ADMIN_TOKEN);
    assert.equal(r.status, 303);
    assert.match(r.setCookies[0], /; Secure(;|$)/);
    assert.equal(r.location, '/users');
    const list = await s.get('/users');
    assert.equal(list.status, 200, 'the Secure cookie carries the session');
    assert.match(list.text, /<span class="role role-admin"/);
    await s.get('/users/new');
    const name = unique('tlsform');
    const created = await s.post('/users', { username: name, email: `${name}@example.com`, full_name: 'Form over TLS' });
    assert.equal(created.status, 303, created.text);
    const detail = await s.get(created.location);
    assert.match(detail.text, new RegExp(`User ${name} created`));
  });
});

describe('Thrift over TLS', () => {
  it('reaches a server that requires mutual TLS with the client certificate', async () => {
    const withCert = await startWeb('tls-thrift-client-cert', mutualServer.thriftPort,
      ['--thrift-tls-ca', a.ca, '--thrift-client-cert', a.clientCert, '--thrift-client-key', a.clientKey]);
    try {
      assert.match(withCert.base, /^http:/, 'the console itself serves plain HTTP here');
      const { read } = await createAndGet(withCert.base, {});
      assert.equal(read.protocol, null);
    } finally {
      assert.equal(await withCert.stop(), 0);
    }
  });

  it('without a client certificate, or with a stranger\'s, answers 503 UNAVAILABLE from a mutual-TLS server', async () => {
    for (const [name, args, alert] of [
      // TLS 1.3's alert; TLS 1.2 ends the handshake itself with handshake_failure.
      ['tls-thrift-no-cert', [], /^ERR_SSL_(TLSV13_ALERT_CERTIFICATE_REQUIRED|SSLV3_ALERT_HANDSHAKE_FAILURE)$/],
      ['tls-thrift-other-cert', ['--thrift-client-cert', b.clientCert, '--thrift-client-key', b.clientKey], /^ERR_SSL_TLSV1_ALERT_UNKNOWN_CA$/],
    ]) {
      const refused = await startWeb(name, mutualServer.thriftPort, ['--thrift-tls-ca', a.ca, '--thrift-connect-timeout-ms', '1000', ...args]);
      try {
        await assertUnreachable(refused.base, {});
        // The server's alert makes it a failed connect (the pool backs off,
        // and the calls were never run), with the reason in the log.
        const warnings = logLines(refused.logFile, 'cannot connect to the polycrud service');
        assert.ok(warnings.length >= 1, `${name}: a warning is logged`);
        assert.ok(warnings.every((w) => alert.test(w.code)), `${name}: ${JSON.stringify(warnings[0])}`);
        const page = await new Session(refused.base).signIn(ADMIN_TOKEN);
        assert.equal(page.status, 503);
        assert.match(page.text, /service is unavailable/);
      } finally {
        assert.equal(await refused.stop(), 0);
      }
    }
  });

  it('cannot reach the server when trusting another CA, or without TLS', async () => {
    for (const [name, args] of [
      ['tls-thrift-other-ca', ['--thrift-tls-ca', b.ca]],
      ['tls-thrift-plain', []],
    ]) {
      const lost = await startWeb(name, server.thriftPort, ['--thrift-connect-timeout-ms', '1000', ...args]);
      try {
        await assertUnreachable(lost.base, {});
      } finally {
        assert.equal(await lost.stop(), 0);
      }
    }
    const warnings = logLines(path.join(path.dirname(web.logFile), 'tls-thrift-other-ca-web.log'), 'cannot connect to the polycrud service');
    assert.ok(warnings.some((w) => w.code === 'SELF_SIGNED_CERT_IN_CHAIN'), JSON.stringify(warnings[0]));
  });
});

describe('console requiring client certificates', () => {
  it('serves clients with a certificate of its client CA and refuses the others', async () => {
    const guarded = await startWeb('tls-client-ca', server.thriftPort, ['--tls-cert', a.serverCert, '--tls-key', a.serverKey,
      '--tls-client-ca', a.ca, '--thrift-tls-ca', a.ca]);
    try {
      const own = { ...trustA(), cert: fs.readFileSync(a.clientCert), key: fs.readFileSync(a.clientKey) };
      await createAndGet(guarded.base, own);
      const none = exchange(`${guarded.base}/healthz`, { tls: trustA() });
      await assert.rejects(none, (err) => /CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|ECONNRESET/.test(err.code) || /socket hang up/.test(err.message));
      const stranger = { ...trustA(), cert: fs.readFileSync(b.clientCert), key: fs.readFileSync(b.clientKey) };
      await assert.rejects(exchange(`${guarded.base}/healthz`, { tls: stranger }),
        (err) => /UNKNOWN_CA|BAD_CERTIFICATE|ECONNRESET/.test(err.code) || /socket hang up/.test(err.message));
      assert.equal((await exchange(`${guarded.base}/healthz`, { tls: own })).status, 200, 'still serving');
    } finally {
      assert.equal(await guarded.stop(), 0);
    }
  });
});

describe('TLS settings', () => {
  const bin = path.resolve(__dirname, '..', 'bin', 'polycrud-web.js');
  const run = (args) => spawnSync(process.execPath, [bin, '--port', '1', '--log-level', 'silent', ...args],
    { encoding: 'utf8', timeout: 10000, env: { PATH: process.env.PATH } });

  it('are documented in --help', () => {
    const help = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0);
    for (const text of ['--tls-cert FILE', '--tls-key FILE', '--tls-client-ca FILE', '--thrift-tls-ca FILE',
      '--thrift-client-cert FILE', '--thrift-client-key FILE', 'POLYCRUD_WEB_TLS_CERT', 'POLYCRUD_WEB_TLS_KEY',
      'POLYCRUD_WEB_TLS_CLIENT_CA', 'POLYCRUD_THRIFT_TLS_CA', 'POLYCRUD_THRIFT_CLIENT_CERT', 'POLYCRUD_THRIFT_CLIENT_KEY']) {
      assert.ok(help.stdout.includes(text), text);
    }
  });

  it('stop the start when incomplete or broken', () => {
    for (const args of [['--tls-cert', a.serverCert], ['--tls-client-ca', a.ca],
      ['--thrift-client-cert', a.clientCert, '--thrift-client-key', a.clientKey], ['--thrift-tls-ca', a.ca, '--thrift-client-key', a.clientKey]]) {
      const r = run(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^polycrud-web: --/);
    }
    for (const [args, message] of [
      [['--tls-cert', a.serverCert, '--tls-key', b.serverKey], /key values mismatch/],
      [['--tls-cert', path.join(a.dir, 'missing.pem'), '--tls-key', a.serverKey], /cannot read --tls-cert .*missing\.pem/],
      [['--tls-cert', a.serverKey, '--tls-key', a.serverKey], /--tls-cert .* holds no PEM certificate/],
      [['--thrift-tls-ca', a.serverKey], /--thrift-tls-ca .* holds no PEM certificate/],
      [['--thrift-tls-ca', a.ca, '--thrift-client-cert', a.clientCert, '--thrift-client-key', b.clientKey], /key values mismatch/],
    ]) {
      const r = run(args);
      assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });
});
