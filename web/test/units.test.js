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
    assert.equal(store.sessions.size, 0);
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
});

describe('html', () => {
  it('escapes interpolations but not fragments', () => {
    const out = html`<p title="${'"x"'}">${'<script>'}${html`<b>${'&'}</b>`}</p>`;
    assert.ok(out instanceof Html);
    assert.equal(String(out), '<p title="&quot;x&quot;">&lt;script&gt;<b>&amp;</b></p>');
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
    await assert.rejects(p.call('ping'), (err) => err.code === 'UNAVAILABLE' && /in time/.test(err.message));
    assert.ok(Date.now() - started >= 190);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(silent.sockets.size, 0, 'the timed-out connection is closed');
    p.close();
    silent.close();
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

  it('fails fast while the service is unreachable, then backs off', async () => {
    const server = net.createServer();
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address();
    await new Promise((r) => server.close(r));
    const p = pool(port);
    await assert.rejects(p.call('ping'), (err) => err.code === 'UNAVAILABLE');
    const started = Date.now();
    await assert.rejects(p.call('ping'), (err) => err.code === 'UNAVAILABLE' && /cannot reach/.test(err.message));
    assert.ok(Date.now() - started < 50, 'no connect attempt during the backoff');
    p.close();
  });
});
