// Unit tests of the web tier's pure parts: int64 handling, the Thrift error
// mapping, problem documents, the bounded session store and the config.
'use strict';

const assert = require('node:assert/strict');
const { describe, it } = require('node:test');
const thrift = require('thrift');
const { parseInt64, toThrift, fromThrift } = require('../src/int64');
const { fromThriftError, ServiceError } = require('../src/service_error');
const { BoundedSessionStore } = require('../src/session_store');
const { parseConfig, UsageError } = require('../src/config');
const { html, Html } = require('../src/views');
const ttypes = require('../gen/polycrud_types');

describe('int64', () => {
  it('parses whole decimal int64 text only', () => {
    assert.equal(parseInt64('42'), 42n);
    assert.equal(parseInt64('-7'), -7n);
    assert.equal(parseInt64('9223372036854775807'), 2n ** 63n - 1n);
    assert.equal(parseInt64('9223372036854775808'), null);
    for (const bad of ['', '+1', ' 1', '1 ', '1.0', '0x10', '1e3', 'abc']) assert.equal(parseInt64(bad), null, bad);
  });
  it('round-trips through node-int64 exactly', () => {
    for (const v of [0n, 1n, -1n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n)]) assert.equal(fromThrift(toThrift(v)), v);
  });
});

describe('Thrift error mapping', () => {
  const cases = [
    [new ttypes.InvalidArgument({ message: 'bad', field: 'email' }), 'INVALID_ARGUMENT', 'email'],
    [new ttypes.Unauthenticated({ message: 'no' }), 'UNAUTHENTICATED'],
    [new ttypes.PermissionDenied({ message: 'no' }), 'PERMISSION_DENIED'],
    [new ttypes.NotFound({ message: 'no' }), 'NOT_FOUND'],
    [new ttypes.Conflict({ message: 'no' }), 'CONFLICT'],
    [new ttypes.Unavailable({ message: 'overloaded, retry later', retry_after_ms: toThrift(1500n) }), 'RESOURCE_EXHAUSTED'],
    [new ttypes.Unavailable({ message: 'service unavailable, retry later', retry_after_ms: toThrift(1000n) }), 'UNAVAILABLE'],
    [new thrift.Thrift.TApplicationException(6, 'internal error'), 'INTERNAL'],
    [new Error('ECONNRESET'), 'INTERNAL'],
  ];
  for (const [err, code, field] of cases) {
    it(`${err.constructor.name} ${err.message || ''} -> ${code}`, () => {
      const mapped = fromThriftError(err, ttypes);
      assert.ok(mapped instanceof ServiceError);
      assert.equal(mapped.code, code);
      if (field) assert.equal(mapped.field, field);
      if (code === 'INTERNAL') assert.equal(mapped.message, 'internal error');
    });
  }
  it('keeps retry_after_ms', () => {
    assert.equal(fromThriftError(cases[5][0], ttypes).retryAfterMs, 1500);
  });
});

describe('BoundedSessionStore', () => {
  const get = (store, sid) => new Promise((r) => store.get(sid, (e, s) => r(s)));
  it('evicts the least recently used session beyond maxSessions', async () => {
    const store = new BoundedSessionStore({ maxSessions: 2, ttlMs: 60000 });
    store.set('a', { n: 1 });
    store.set('b', { n: 2 });
    store.touch('a', {});
    store.set('c', { n: 3 });
    assert.deepEqual(await get(store, 'a'), { n: 1 });
    assert.equal(await get(store, 'b'), null);
    assert.deepEqual(await get(store, 'c'), { n: 3 });
    store.close();
  });
  it('expires sessions ttlMs after their last use', async () => {
    let now = 1000;
    const store = new BoundedSessionStore({ maxSessions: 10, ttlMs: 100, now: () => now });
    store.set('a', { n: 1 });
    store.set('b', { n: 2 });
    now = 1050;
    store.touch('b', {});
    now = 1120;
    assert.equal(await get(store, 'a'), null);
    assert.deepEqual(await get(store, 'b'), { n: 2 });
    now = 1200;
    store.prune();
    assert.equal(store.size, 0);
    store.close();
  });
  it('never evicts a signed-in session for visitors\' sessions', async () => {
    const store = new BoundedSessionStore({ maxSessions: 2, ttlMs: 60000 });
    store.set('admin', { token: 't', role: 'admin' });
    for (let i = 0; i < 100; i++) store.set(`visitor${i}`, { csrf: String(i) });
    assert.deepEqual(await get(store, 'admin'), { token: 't', role: 'admin' });
    assert.equal(await get(store, 'visitor0'), null, 'visitors evict visitors');
    assert.deepEqual(await get(store, 'visitor99'), { csrf: '99' });
    assert.equal(store.size, 3);
    // Signing out (the session loses its token) moves it back among visitors.
    store.set('admin', { csrf: 'x' });
    assert.equal(store.signedIn.size, 0);
    store.close();
  });
});

describe('config', () => {
  it('reads flags before environment variables', () => {
    const c = parseConfig(['--port', '4000'], { POLYCRUD_WEB_PORT: '5000', POLYCRUD_THRIFT_PORT: '9999' });
    assert.equal(c.port, 4000);
    assert.equal(c.thriftPort, 9999);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(parseConfig([], { PORT: '3100' }).port, 3100);
  });
  it('rejects bad values and unknown flags', () => {
    assert.throws(() => parseConfig(['--port', '70000'], {}), UsageError);
    assert.throws(() => parseConfig(['--bogus'], {}), UsageError);
    assert.throws(() => parseConfig(['--thrift-protocol', 'json'], {}), UsageError);
    assert.throws(() => parseConfig(['--thrift-pool-size', '0'], {}), UsageError);
  });
  it('reads the TLS files, which go in pairs, and makes the cookie Secure when serving HTTPS', () => {
    assert.equal(parseConfig([], {}).tlsCert, null);
    assert.equal(parseConfig([], {}).secureCookie, false);
    const c = parseConfig(['--tls-key', 'k.pem'], { POLYCRUD_WEB_TLS_CERT: 'c.pem', POLYCRUD_WEB_TLS_CLIENT_CA: 'ca.pem',
      POLYCRUD_THRIFT_TLS_CA: 'tca.pem', POLYCRUD_THRIFT_CLIENT_CERT: 'tc.pem', POLYCRUD_THRIFT_CLIENT_KEY: 'tk.pem' });
    assert.deepEqual([c.tlsCert, c.tlsKey, c.tlsClientCa, c.thriftTlsCa, c.thriftClientCert, c.thriftClientKey],
      ['c.pem', 'k.pem', 'ca.pem', 'tca.pem', 'tc.pem', 'tk.pem']);
    assert.equal(c.secureCookie, true);
    assert.equal(parseConfig([], { POLYCRUD_WEB_TLS_CERT: 'c.pem', POLYCRUD_WEB_TLS_KEY: 'k.pem', POLYCRUD_WEB_SECURE_COOKIE: '0' })
      .secureCookie, true, 'HTTPS always has a Secure cookie');
    for (const [argv, env] of [[['--tls-cert', 'c.pem'], {}], [[], { POLYCRUD_WEB_TLS_KEY: 'k.pem' }],
      [['--tls-client-ca', 'ca.pem'], {}], [['--thrift-client-cert', 'c.pem'], { POLYCRUD_THRIFT_TLS_CA: 'ca.pem' }],
      [['--thrift-client-cert', 'c.pem', '--thrift-client-key', 'k.pem'], {}], [['--tls-cert', ''], {}]]) {
      assert.throws(() => parseConfig(argv, env), UsageError, JSON.stringify([argv, env]));
    }
  });
});

describe('html', () => {
  it('escapes interpolations but not fragments', () => {
    const out = html`<p title="${'"x"'}">${'<script>'}${html`<b>${'&'}</b>`}</p>`;
    assert.ok(out instanceof Html);
    assert.equal(String(out), '<p title="&quot;x&quot;">&lt;script&gt;<b>&amp;</b></p>');
  });
});

describe('Thrift frame reader', () => {
  const { frameReader, FrameError } = require('../src/thrift_frames');
  const frame = (text) => {
    const body = Buffer.from(text);
    const head = Buffer.alloc(4);
    head.writeInt32BE(body.length);
    return Buffer.concat([head, body]);
  };

  it('finds every frame however the stream is cut', () => {
    const stream = Buffer.concat([frame('first'), frame(''), frame('x'.repeat(300)), frame('last')]);
    for (let cut = 1; cut <= stream.length; cut++) {
      const got = [];
      const read = frameReader((f) => got.push(f.toString()));
      for (let at = 0; at < stream.length; at += cut) read(stream.subarray(at, at + cut));
      assert.deepEqual(got, ['first', '', 'x'.repeat(300), 'last'], `cut every ${cut} bytes`);
    }
  });

  it('waits for the rest of a frame and keeps what follows it', () => {
    const got = [];
    const read = frameReader((f) => got.push(f.toString()));
    const two = Buffer.concat([frame('abc'), frame('defg')]);
    read(two.subarray(0, 9));
    assert.deepEqual(got, ['abc']);
    read(two.subarray(9));
    assert.deepEqual(got, ['abc', 'defg']);
  });

  it('refuses a length beyond the bound or below zero', () => {
    const big = Buffer.alloc(4);
    big.writeInt32BE(1025);
    assert.throws(() => frameReader(() => {}, 1024)(big), FrameError);
    const negative = Buffer.alloc(4);
    negative.writeInt32BE(-1);
    assert.throws(() => frameReader(() => {})(negative), FrameError);
  });
});

describe('ThriftPool', () => {
  const net = require('node:net');
  const pino = require('pino');
  const { ThriftPool } = require('../src/thrift_pool');
  const service = require('../gen/UserService');

  // A TCP server that accepts connections and never answers.
  async function silentServer() {
    const sockets = new Set();
    const server = net.createServer((s) => {
      s.resume(); // read and discard, so the client's close is seen
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    return { port: server.address().port, sockets, close: () => { for (const s of sockets) s.destroy(); server.close(); } };
  }
  const pool = (port, extra = {}) => new ThriftPool({ host: '127.0.0.1', port, size: 1, callTimeoutMs: 200, connectTimeoutMs: 500,
    idleMs: 60000, maxInFlight: 2, protocol: 'binary', service, ttypes, logger: pino({ level: 'silent' }), ...extra });

  it('times a silent call out as UNAVAILABLE and drops its connection', async () => {
    const silent = await silentServer();
    const p = pool(silent.port);
    const started = Date.now();
    await assert.rejects(p.call('ping'), (err) => err.code === 'UNAVAILABLE' && /in time/.test(err.message) && err.outcomeUnknown === true);
    assert.ok(Date.now() - started >= 190);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(silent.sockets.size, 0, 'the timed-out connection is closed');
    p.close();
    silent.close();
  });

  it('marks calls in flight on a lost open connection as of unknown outcome', async () => {
    const silent = await silentServer();
    const p = pool(silent.port, { callTimeoutMs: 5000 });
    try {
      const call = p.call('ping');
      while (p.stats().connections === 0 || silent.sockets.size === 0) await new Promise((r) => setTimeout(r, 10));
      for (const s of silent.sockets) s.destroy();
      await assert.rejects(call, (err) => err.code === 'UNAVAILABLE' && /connection lost/.test(err.message) && err.outcomeUnknown === true);
    } finally {
      p.close();
      silent.close();
    }
  });

  it('answers RESOURCE_EXHAUSTED beyond maxInFlight calls per connection', async () => {
    const silent = await silentServer();
    const p = pool(silent.port);
    const pending = [p.call('ping'), p.call('ping')];
    await assert.rejects(p.call('ping'), (err) => err.code === 'RESOURCE_EXHAUSTED');
    await Promise.allSettled(pending);
    p.close();
    silent.close();
  });

  it('drops a connection whose reply frame is corrupt and fails its calls as of unknown outcome', async () => {
    // Answers every request with a frame length no reply can have.
    const sockets = new Set();
    const server = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('data', () => s.write(Buffer.from([0xff, 0xff, 0xff, 0xff])));
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const p = pool(server.address().port, { callTimeoutMs: 5000 });
    try {
      await assert.rejects(p.call('ping'), (err) => err.code === 'UNAVAILABLE' && /connection lost/.test(err.message) && err.outcomeUnknown === true);
      assert.equal(p.stats().connections, 0);
    } finally {
      p.close();
      for (const s of sockets) s.destroy();
      server.close();
    }
  });

  it('fails fast while the service is unreachable, then backs off', async () => {
    const server = net.createServer();
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address();
    await new Promise((r) => server.close(r));
    const p = pool(port);
    // Never sent, so surely not run.
    await assert.rejects(p.call('ping'), (err) => err.code === 'UNAVAILABLE' && err.outcomeUnknown === false);
    const started = Date.now();
    await assert.rejects(p.call('ping'), (err) => err.code === 'UNAVAILABLE' && /cannot reach/.test(err.message) && err.outcomeUnknown === false);
    assert.ok(Date.now() - started < 50, 'no connect attempt during the backoff');
    p.close();
  });
});

describe('ThriftPool over TLS', () => {
  const fs = require('node:fs');
  const tls = require('node:tls');
  const pino = require('pino');
  const { ThriftPool } = require('../src/thrift_pool');
  const { thriftSecureContext } = require('../src/tls');
  const { makeTls } = require('./support/stack');
  const service = require('../gen/UserService');
  const a = makeTls('units-a');
  const b = makeTls('units-b');

  // A TLS server (CA a's certificate) that reads and never answers;
  // clientCa: client certificates required. Records what it read, and from whom.
  async function silentTlsServer(clientCa, host = '127.0.0.1') {
    const sockets = new Set();
    const received = [];
    const options = { cert: fs.readFileSync(a.serverCert), key: fs.readFileSync(a.serverKey) };
    if (clientCa) Object.assign(options, { ca: fs.readFileSync(clientCa), requestCert: true, rejectUnauthorized: true });
    const server = tls.createServer(options, (s) => {
      sockets.add(s);
      s.on('data', (d) => received.push({ bytes: d.length, peer: s.getPeerCertificate().subject }));
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    });
    server.on('tlsClientError', () => {});
    await new Promise((r) => server.listen(0, host, r));
    return { port: server.address().port, sockets, received, close: () => { for (const s of sockets) s.destroy(); server.close(); } };
  }
  const pool = (port, tlsConfig, extra = {}) => new ThriftPool({ host: '127.0.0.1', port, size: 1, callTimeoutMs: 300,
    connectTimeoutMs: 1000, idleMs: 60000, maxInFlight: 2, protocol: 'binary', service, ttypes,
    logger: pino({ level: 'silent' }), secureContext: thriftSecureContext(tlsConfig), ...extra });
  // A logger that keeps its warnings.
  const warnings = () => {
    const lines = [];
    const logger = pino({ level: 'warn' }, { write: (line) => lines.push(JSON.parse(line)) });
    return { logger, lines };
  };

  it('times a silent call out as UNAVAILABLE and drops its connection, as in plain Thrift', async () => {
    const silent = await silentTlsServer();
    const p = pool(silent.port, { thriftTlsCa: a.ca });
    try {
      await assert.rejects(p.call('ping'), (err) => err.code === 'UNAVAILABLE' && /in time/.test(err.message) && err.outcomeUnknown === true);
      assert.ok(silent.received.length >= 1, 'the call went out inside TLS');
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(silent.sockets.size, 0, 'the timed-out connection is closed');
    } finally {
      p.close();
      silent.close();
    }
  });

  it('presents its client certificate, and a lost open connection leaves the outcome unknown', async () => {
    const mutual = await silentTlsServer(a.ca);
    const p = pool(mutual.port, { thriftTlsCa: a.ca, thriftClientCert: a.clientCert, thriftClientKey: a.clientKey }, { callTimeoutMs: 5000 });
    try {
      const call = p.call('ping');
      while (mutual.received.length === 0) await new Promise((r) => setTimeout(r, 10));
      assert.equal(mutual.received[0].peer.CN, 'polycrud client');
      for (const s of mutual.sockets) s.destroy();
      await assert.rejects(call, (err) => err.code === 'UNAVAILABLE' && /connection lost/.test(err.message) && err.outcomeUnknown === true);
    } finally {
      p.close();
      mutual.close();
    }
  });

  // In TLS 1.3 the server's certificate_required alert comes after the
  // client has finished its handshake and sent the call. (Node's server ends
  // a connection with a certificate of another CA without an alert, unlike
  // OpenSSL's own check in polycrud-server: tls.test.js has that case.)
  it('counts a refused client certificate as a failed connect: nothing ran, then backoff', async () => {
    const mutual = await silentTlsServer(a.ca);
    const p = pool(mutual.port, { thriftTlsCa: a.ca }, { callTimeoutMs: 5000 });
    try {
      await assert.rejects(p.call('ping'), (err) => err.code === 'UNAVAILABLE' && err.outcomeUnknown === false);
      const started = Date.now();
      await assert.rejects(p.call('ping'), (err) => err.code === 'UNAVAILABLE' && /cannot reach/.test(err.message));
      assert.ok(Date.now() - started < 50, 'no connect attempt during the backoff');
      assert.equal(p.stats().connections, 0);
      assert.equal(mutual.received.length, 0, 'the server never read a call');
    } finally {
      p.close();
      mutual.close();
    }
  });

  it('refuses a server certificate of another CA, or not naming the host, before sending anything', async () => {
    // 127.0.0.2 is loopback too, but the certificate names 127.0.0.1 only.
    for (const [config, host, code] of [[{ thriftTlsCa: b.ca }, '127.0.0.1', 'SELF_SIGNED_CERT_IN_CHAIN'],
      [{ thriftTlsCa: a.ca }, '127.0.0.2', 'ERR_TLS_CERT_ALTNAME_INVALID']]) {
      const silent = await silentTlsServer(null, host);
      const log = warnings();
      const p = pool(silent.port, config, { host, logger: log.logger });
      try {
        await assert.rejects(p.call('ping'), (err) => err.code === 'UNAVAILABLE' && err.outcomeUnknown === false);
        await assert.rejects(p.call('ping'), (err) => /cannot reach/.test(err.message));
        assert.equal(silent.received.length, 0);
        assert.equal(log.lines.length, 1);
        assert.equal(log.lines[0].msg, 'cannot connect to the polycrud service');
        assert.equal(log.lines[0].code, code);
      } finally {
        p.close();
        silent.close();
      }
    }
  });
});

describe('pageBefore (backward keyset pages)', () => {
  const { pageBefore, MAX_PROBES } = require('../src/paging');
  // listUsers over a sorted list of BigInt ids, counting calls.
  function fakeList(ids) {
    const fake = async (after, limit) => {
      fake.calls++;
      const users = ids.filter((id) => id > after).slice(0, limit + 1).map((id) => ({ id }));
      const more = users.length > limit;
      if (more) users.pop();
      return { users, next_after_id: more ? users[users.length - 1].id : 0n };
    };
    fake.calls = 0;
    return fake;
  }
  const range = (a, b) => Array.from({ length: Number(b - a) + 1 }, (_, i) => a + BigInt(i));
  const idsOf = (page) => page.users.map((u) => u.id);
  // What a forward walk shows: the `limit` ids just below `before`.
  const expected = (ids, before, limit) => ids.filter((id) => id < before).slice(-limit);

  it('finds the page just below an id in one call when ids are dense', async () => {
    // 8,000,000 dense ids; their neighbourhood is all the probes can see.
    const list = fakeList(range(3999000n, 4001000n));
    const page = await pageBefore(list, 4000000n, 20);
    assert.deepEqual(idsOf(page), range(3999980n, 3999999n));
    assert.equal(page.after, 3999979n);
    assert.equal(page.next_after_id, 3999999n);
    assert.equal(page.first, false);
    assert.equal(list.calls, 1);
  });

  it('skips deleted ids and huge gaps, and stops at the first page', async () => {
    const ids = [...range(1n, 30n), ...range(100n, 104n), 5000000n, ...range(9000000000000n, 9000000000003n)];
    for (const limit of [1, 2, 5, 20, 100]) {
      for (const before of [2n, 25n, 31n, 100n, 102n, 105n, 4999999n, 5000000n, 5000001n, 9000000000000n, 9000000000002n, 2n ** 63n - 1n]) {
        const list = fakeList(ids);
        const page = await pageBefore(list, before, limit);
        const want = expected(ids, before, limit);
        if (want.length < limit) {
          assert.equal(page.first, true, `before ${before} limit ${limit}`);
          assert.deepEqual(idsOf(page), ids.slice(0, limit), `first page for before ${before} limit ${limit}`);
        } else {
          assert.deepEqual(idsOf(page), want, `before ${before} limit ${limit}`);
          assert.equal(page.first, want[0] === ids[0]);
          const forward = await fakeList(ids)(page.after, limit);
          assert.deepEqual(idsOf(forward), want, 'the same page as a forward walk from its position');
          assert.equal(page.next_after_id, forward.next_after_id);
        }
        assert.ok(list.calls <= MAX_PROBES + 1, `${list.calls} calls`);
      }
    }
  });

  it('answers the first page below id 1 and on an empty table', async () => {
    assert.equal((await pageBefore(fakeList([5n]), 1n, 20)).first, true);
    const empty = await pageBefore(fakeList([]), 100n, 20);
    assert.deepEqual(empty.users, []);
    assert.equal(empty.first, true);
  });
});

describe('parseExactNumbers (gateway JSON bodies)', () => {
  const { parseExactNumbers, JsonNumber } = require('../src/gateway');
  it('keeps every number literal exact and leaves strings alone', () => {
    const body = parseExactNumbers('{"ids":[1, -9223372036854775808, 9007199254740993, 1.0, 1e2, -0.5E-3],' +
      '"s":"12 \\"34\\" \\\\ 56", "n":null, "t":[true,false], "o":{"k":7}}');
    assert.deepEqual(body.ids.map((n) => n instanceof JsonNumber && n.text),
      ['1', '-9223372036854775808', '9007199254740993', '1.0', '1e2', '-0.5E-3']);
    assert.equal(body.s, '12 "34" \\ 56');
    assert.equal(body.n, null);
    assert.deepEqual(body.t, [true, false]);
    assert.equal(body.o.k.text, '7');
  });
  it('turns no string into a number', () => {
    const body = parseExactNumbers('{"ids":["0", ":0", "1e2"]}');
    assert.deepEqual(body.ids, ['0', ':0', '1e2']);
  });
  it('reads a deeply nested body without overflowing the call stack', () => {
    const depth = 100000;
    const body = parseExactNumbers(`{"ids":${'['.repeat(depth)}7${']'.repeat(depth)},"o":${'{"k":'.repeat(depth)}8${'}'.repeat(depth)}}`);
    let ids = body.ids;
    for (let i = 0; i < depth; i++) ids = ids[0];
    assert.ok(ids instanceof JsonNumber);
    assert.equal(ids.text, '7');
    let o = body.o;
    for (let i = 0; i < depth; i++) o = o.k;
    assert.equal(o.text, '8');
  });
});

// A generated corpus for the gateway's JSON reading: bodies mutated from
// valid ones by a seeded generator (bounded, the same on every run). For
// each text JSON.parse accepts (the gateway checks that first),
// parseExactNumbers must give the same document with every number as its
// literal; parseInt64 must agree with BigInt on every id-like text.
describe('gateway body parsing, generated corpus', () => {
  const { parseExactNumbers, JsonNumber } = require('../src/gateway');
  const { INT64_MIN, INT64_MAX } = require('../src/int64');
  // mulberry32: a small seeded generator, so a failure is reproducible.
  const generator = (seed) => () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const seeds = [
    '{"ids":[1,2,9223372036854775807,-9223372036854775808]}',
    '{"username":"zed","email":"zed@example.com","full_name":"Z\\u00f6 \\"q\\" \\\\"}',
    '{"email":"a@b.c","full_name":"x","nested":{"a":[1.5,-0,1e3,2E-2,{"b":null}]}}',
    '{"ids":[[[[1]]],{"k":[true,false,null,"1"]}]}',
  ];
  const alphabet = '{}[]",:0123456789-+.eE \\tnulltruefalse\\u00';
  const mutate = (text, random) => {
    const at = Math.floor(random() * (text.length + 1));
    switch (Math.floor(random() * 4)) {
      case 0: return text.slice(0, at) + alphabet[Math.floor(random() * alphabet.length)] + text.slice(at);
      case 1: return text.slice(0, at) + text.slice(at + 1);
      case 2: return text.slice(0, at) + text.slice(at, at + Math.floor(random() * 8)) + text.slice(at);
      default: return text.slice(0, at) + alphabet[Math.floor(random() * alphabet.length)] + text.slice(at + 1);
    }
  };
  const withNumbers = (value) => {
    if (value instanceof JsonNumber) return Number(value.text);
    if (Array.isArray(value)) return value.map(withNumbers);
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withNumbers(v)]));
    }
    return value;
  };

  it('reads every accepted body as JSON.parse does, numbers kept as written', () => {
    const random = generator(20261207);
    let accepted = 0;
    for (let n = 0; n < 20000; n++) {
      let text = seeds[n % seeds.length];
      const steps = 1 + Math.floor(random() * 6);
      for (let s = 0; s < steps; s++) text = mutate(text, random);
      let expected;
      try {
        expected = JSON.parse(text);
      } catch {
        continue; // the gateway answers 400 before parseExactNumbers
      }
      accepted++;
      assert.deepEqual(withNumbers(parseExactNumbers(text)), expected, text);
    }
    assert.ok(accepted > 1000, `only ${accepted} of the mutated bodies were valid JSON`);
  });

  it('reads an int64 exactly when BigInt does and it is in range', () => {
    const random = generator(7);
    for (let n = 0; n < 20000; n++) {
      let text = ['9223372036854775807', '-9223372036854775808', '0', '42', '-1'][n % 5];
      for (let s = 0; s < 1 + Math.floor(random() * 3); s++) text = mutate(text, random);
      let reference = null;
      if (/^-?[0-9]+$/.test(text) && !/^-?0[0-9]/.test(text) && text !== '-0') {
        const big = BigInt(text);
        if (big >= INT64_MIN && big <= INT64_MAX) reference = big;
      }
      const got = parseInt64(text);
      if (reference === null) assert.ok(got === null || got === BigInt(text), text);
      else assert.equal(got, reference, text);
    }
  });
});

describe('protocol lab requests', () => {
  const { parseCompare, resultRow, LabError } = require('../src/lab');
  const parse = (query) => parseCompare(new URLSearchParams(query));
  const refusal = (query) => {
    try {
      parse(query);
    } catch (err) {
      assert.ok(err instanceof LabError);
      assert.equal(err.code, 'INVALID_ARGUMENT');
      return err.field;
    }
    return null;
  };

  it('reads protocols in the lab\'s order, with defaults for the rest', () => {
    assert.deepEqual(parse('protocols=rest,thrift,web, grpc'),
      { protocols: ['thrift', 'grpc', 'rest', 'web'], op: 'get', seconds: 5, connections: 16 });
    assert.deepEqual(parse('protocols=soap&op=mix&seconds=30&connections=64'),
      { protocols: ['soap'], op: 'mix', seconds: 30, connections: 64 });
    assert.deepEqual(parse('protocols=thrift-compact&op=ping&seconds=1&connections=1').seconds, 1);
  });

  it('refuses anything out of bounds, naming the field', () => {
    for (const [query, field] of [
      ['', 'protocols'], ['protocols=', 'protocols'], ['protocols=,', 'protocols'],
      ['protocols=thrift,THRIFT', 'protocols'], ['protocols=grpc,grpc', 'protocols'],
      ['protocols=__proto__', 'protocols'], ['protocols=thrift&op=Ping', 'op'], ['protocols=thrift&op=toString', 'op'],
      ['protocols=thrift&seconds=0', 'seconds'], ['protocols=thrift&seconds=31', 'seconds'],
      ['protocols=thrift&seconds=+5', 'seconds'], ['protocols=thrift&seconds=1e1', 'seconds'],
      ['protocols=thrift&connections=0', 'connections'], ['protocols=thrift&connections=65', 'connections'],
      ['protocols=thrift&connections=9999999', 'connections'],
    ]) {
      assert.equal(refusal(query), field, query);
    }
  });

  it('turns a load generator result into the contract\'s row', () => {
    const doc = { throughput_rps: 1234.5, latency_ms: { p50: 0.2, p99: 1.5 }, bytes_sent_per_request: 60,
      bytes_received_per_request: 140, server_cpu: { seconds: 1, per_request_us: 25.5 }, requests: 2469, error_count: 0 };
    assert.deepEqual(resultRow('grpc', doc), { protocol: 'grpc', requests_per_s: 1234.5, p50_ms: 0.2, p99_ms: 1.5,
      bytes_per_call: 200, server_cpu_us_per_call: 25.5, requests: 2469, errors: 0 });
    assert.equal(resultRow('grpc', { ...doc, server_cpu: null }).server_cpu_us_per_call, null);
  });
});
