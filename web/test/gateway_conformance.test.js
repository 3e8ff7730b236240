// The REST gateway against the C++ REST face, side by side on one server:
// every scenario runs on both faces, asserts the contract on each, and the
// two transcripts (status, media type, problem code/field/title, ETag,
// Location, Allow, WWW-Authenticate, Retry-After, body shape) must be equal.
// The scenarios are those of tests/conformance/conformance_test.cc, in REST
// form, plus the REST-only behaviours (415, 413, 405, 404, If-Match, query
// validation, malformed bodies and where they break, deeply nested bodies,
// exact int64 batch ids, HEAD).
'use strict';

const assert = require('node:assert/strict');
const { after, before, describe, it } = require('node:test');
const { ADMIN_TOKEN, READER_TOKEN, startServer, startWeb, unique } = require('./support/stack');

const ABSENT = 8765432100;

let server;
let web;
let faces;

before(async () => {
  server = await startServer('gateway-conformance');
  web = await startWeb('gateway-conformance', server.thriftPort);
  faces = [
    { name: 'cxx-rest', base: server.restBase, prefix: '' },
    { name: 'gateway', base: web.base, prefix: '/api' },
  ];
});

after(async () => {
  if (web) assert.equal(await web.stop(), 0, 'polycrud-web exits 0 on SIGTERM');
  if (server) await server.stop();
});

const mediaType = (v) => (v ? v.split(';')[0].trim() : null);

// The JSON shape of a body: keys and value types, recursively.
function shape(v) {
  if (Array.isArray(v)) return v.length ? [shape(v[0])] : [];
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).map((k) => [k, shape(v[k])]));
  return typeof v;
}

// One HTTP exchange on a face. opts: token, json (a value), body (raw text),
// type (Content-Type), headers.
async function call(face, method, path, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  if (opts.token !== undefined) headers.Authorization = `Bearer ${opts.token}`;
  let body;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['Content-Type'] = opts.type || 'application/json';
  } else if (opts.body !== undefined) {
    body = opts.body;
    if (opts.type) headers['Content-Type'] = opts.type;
  }
  const res = await fetch(face.base + face.prefix + path, { method, headers, body, redirect: 'manual' });
  const text = await res.text();
  let json = null;
  if (text && /json/.test(res.headers.get('content-type') || '')) json = JSON.parse(text);
  return { status: res.status, headers: res.headers, text, json };
}

// What must match between the faces for one exchange.
function summary(face, r) {
  const h = (n) => r.headers.get(n);
  const problem = r.json && r.json.type === 'about:blank';
  const s = { status: r.status, type: mediaType(h('content-type')) };
  if (problem) {
    Object.assign(s, { keys: Object.keys(r.json), code: r.json.code, field: r.json.field, title: r.json.title,
      problemStatus: r.json.status });
  } else if (r.json) {
    s.shape = shape(r.json);
  } else {
    s.bodyBytes = r.text.length;
  }
  if (h('etag')) s.etag = r.json && r.json.version !== undefined && h('etag') === `"${r.json.version}"` ? 'version' : h('etag');
  if (h('location')) s.location = r.json && h('location') === `${face.prefix}/v1/users/${r.json.id}` ? 'self' : h('location');
  for (const name of ['allow', 'www-authenticate']) if (h(name)) s[name] = h(name);
  if (h('retry-after')) s.retryAfter = 'set';
  return s;
}

const draft = (username, full_name = 'Conformance User') => ({ username, email: `${username}@example.com`, full_name });

// Scenario steps get a recorder: rec(label, response) stores the summary and
// returns the response for further checks.
const SCENARIOS = {
  async pingNeedsNoToken(f, rec) {
    const r = rec('ping', await call(f, 'GET', '/v1/ping'));
    assert.equal(r.status, 200);
    assert.match(r.json.server, /^polycrud /);
  },

  async crudRoundTrip(f, rec) {
    const d = draft(unique('gw'));
    const created = rec('create', await call(f, 'POST', '/v1/users', { token: ADMIN_TOKEN, json: d }));
    assert.equal(created.status, 201);
    const u = created.json;
    assert.ok(u.id > 0);
    assert.equal(u.version, 1);
    assert.deepEqual([u.username, u.email, u.full_name], [d.username, d.email, d.full_name]);
    assert.equal(u.created_at_ms, u.updated_at_ms);
    assert.equal(created.headers.get('etag'), '"1"');
    assert.equal(created.headers.get('location'), `${f.prefix}/v1/users/${u.id}`);
    const got = rec('get', await call(f, 'GET', `/v1/users/${u.id}`, { token: READER_TOKEN }));
    assert.equal(got.status, 200);
    assert.deepEqual(got.json, u);
    if (f.prefix === '/api') {
      // The gateway's own security headers (its lean set, not the console's).
      assert.equal(got.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(got.headers.get('content-security-policy'), "default-src 'none'; frame-ancestors 'none'");
      assert.equal(got.headers.get('x-frame-options'), 'DENY');
      assert.match(got.headers.get('x-request-id') || '', /^[0-9a-f-]{36}$/);
    }
    const head = rec('head', await call(f, 'HEAD', `/v1/users/${u.id}`, { token: READER_TOKEN }));
    assert.equal(head.status, 200);
    assert.equal(head.text, '');
    assert.equal(head.headers.get('etag'), '"1"');
    const updated = rec('update', await call(f, 'PATCH', `/v1/users/${u.id}`,
      { token: ADMIN_TOKEN, json: { full_name: 'Renamed' }, headers: { 'If-Match': '"1"' } }));
    assert.equal(updated.status, 200);
    assert.equal(updated.json.version, 2);
    assert.equal(updated.json.full_name, 'Renamed');
    assert.equal(updated.json.email, d.email);
    assert.equal(updated.headers.get('etag'), '"2"');
    const deleted = rec('delete', await call(f, 'DELETE', `/v1/users/${u.id}`, { token: ADMIN_TOKEN }));
    assert.equal(deleted.status, 204);
    assert.equal(deleted.text, '');
    assert.equal(rec('get-deleted', await call(f, 'GET', `/v1/users/${u.id}`, { token: READER_TOKEN })).json.code, 'NOT_FOUND');
  },

  async unicodeAndSqlLookingNamesRoundTrip(f, rec) {
    const names = ['Zoë Ångström', '李小龙', '😀🚀 emoji', 'O\'Brien "quoted" <b>&amp;</b>', "'; DROP TABLE users; --",
      "Robert'); DELETE FROM users WHERE ('1'='1", 'x'.repeat(128), 'e\u0301 combining'];
    for (const [i, name] of names.entries()) {
      const c = rec(`create-${i}`, await call(f, 'POST', '/v1/users', { token: ADMIN_TOKEN, json: draft(unique('uni'), name) }));
      assert.equal(c.status, 201, c.text);
      const g = rec(`get-${i}`, await call(f, 'GET', `/v1/users/${c.json.id}`, { token: READER_TOKEN }));
      assert.equal(g.json.full_name, name);
    }
  },

  async invalidFieldsAreNamed(f, rec) {
    const expectField = (r, field) => {
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.code, 'INVALID_ARGUMENT');
      if (field) assert.equal(r.json.field, field);
    };
    expectField(rec('username', await call(f, 'POST', '/v1/users', { token: ADMIN_TOKEN, json: draft('Not Valid') })), 'username');
    expectField(rec('email', await call(f, 'POST', '/v1/users',
      { token: ADMIN_TOKEN, json: { ...draft(unique('bad')), email: 'two@@example.com' } })), 'email');
    expectField(rec('full_name', await call(f, 'POST', '/v1/users',
      { token: ADMIN_TOKEN, json: { ...draft(unique('bad')), full_name: 'y'.repeat(129) } })), 'full_name');
    expectField(rec('missing-fields', await call(f, 'POST', '/v1/users', { token: ADMIN_TOKEN, json: {} })), 'username');
    expectField(rec('non-string', await call(f, 'POST', '/v1/users',
      { token: ADMIN_TOKEN, json: { ...draft(unique('bad')), email: 5 } })), 'email');
    expectField(rec('id-zero', await call(f, 'GET', '/v1/users/0', { token: READER_TOKEN })), 'id');
    expectField(rec('id-text', await call(f, 'GET', '/v1/users/12abc', { token: READER_TOKEN })), 'id');
    expectField(rec('id-over-int64', await call(f, 'GET', '/v1/users/99999999999999999999', { token: READER_TOKEN })), 'id');
    expectField(rec('empty-patch', await call(f, 'PATCH', '/v1/users/1', { token: ADMIN_TOKEN, json: {} })));
  },

  async tokensAndRoles(f, rec) {
    const u = (await call(f, 'POST', '/v1/users', { token: ADMIN_TOKEN, json: draft(unique('auth')) })).json;
    const none = rec('no-token', await call(f, 'GET', `/v1/users/${u.id}`));
    assert.equal(none.status, 401);
    assert.equal(none.json.code, 'UNAUTHENTICATED');
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    assert.equal(rec('wrong', await call(f, 'GET', `/v1/users/${u.id}`, { token: 'wrong-token' })).status, 401);
    assert.equal(rec('scheme-case', await call(f, 'GET', `/v1/users/${u.id}`,
      { headers: { Authorization: `bEaReR  ${READER_TOKEN} ` } })).status, 200);
    assert.equal(rec('basic-scheme', await call(f, 'GET', `/v1/users/${u.id}`,
      { headers: { Authorization: `Basic ${READER_TOKEN}` } })).status, 401);
    assert.equal(rec('reader-get', await call(f, 'GET', `/v1/users/${u.id}`, { token: READER_TOKEN })).status, 200);
    assert.equal(rec('reader-list', await call(f, 'GET', '/v1/users?limit=1', { token: READER_TOKEN })).status, 200);
    for (const [label, method, path, json] of [['reader-create', 'POST', '/v1/users', draft(unique('auth'))],
      ['reader-update', 'PATCH', `/v1/users/${u.id}`, { full_name: 'x' }], ['reader-delete', 'DELETE', `/v1/users/${u.id}`]]) {
      const r = rec(label, await call(f, method, path, { token: READER_TOKEN, json }));
      assert.equal(r.status, 403, label);
      assert.equal(r.json.code, 'PERMISSION_DENIED');
    }
    // Authentication comes before validation.
    assert.equal(rec('wrong-and-invalid', await call(f, 'GET', '/v1/users/-5', { token: 'wrong-token' })).status, 401);
  },

  async conflictsOnDuplicatesAndVersions(f, rec) {
    const u = (await call(f, 'POST', '/v1/users', { token: ADMIN_TOKEN, json: draft(unique('dup')) })).json;
    const expect409 = (r) => {
      assert.equal(r.status, 409, r.text);
      assert.equal(r.json.code, 'CONFLICT');
    };
    expect409(rec('dup-username', await call(f, 'POST', '/v1/users',
      { token: ADMIN_TOKEN, json: { ...draft(u.username), email: `other-${u.email}` } })));
    expect409(rec('dup-email', await call(f, 'POST', '/v1/users',
      { token: ADMIN_TOKEN, json: { ...draft(unique('dup')), email: u.email.toUpperCase() } })));
    expect409(rec('stale-version', await call(f, 'PATCH', `/v1/users/${u.id}`,
      { token: ADMIN_TOKEN, json: { full_name: 'x' }, headers: { 'If-Match': '"9"' } })));
    assert.equal(rec('right-version', await call(f, 'PATCH', `/v1/users/${u.id}`,
      { token: ADMIN_TOKEN, json: { full_name: 'y' }, headers: { 'If-Match': '"1"' } })).status, 200);
    const star = rec('if-match-star', await call(f, 'PATCH', `/v1/users/${u.id}`,
      { token: ADMIN_TOKEN, json: { full_name: 'z' }, headers: { 'If-Match': '*' } }));
    assert.equal(star.json.version, 3);
    for (const [label, value] of [['if-match-unquoted', '3'], ['if-match-zero', '"0"'], ['if-match-text', '"abc"']]) {
      const r = rec(label, await call(f, 'PATCH', `/v1/users/${u.id}`,
        { token: ADMIN_TOKEN, json: { full_name: 'w' }, headers: { 'If-Match': value } }));
      assert.equal(r.status, 400, label);
      assert.equal(r.json.field, 'If-Match');
    }
  },

  async missingUsersAreNotFound(f, rec) {
    for (const [label, method, json] of [['get', 'GET'], ['update', 'PATCH', { full_name: 'x' }], ['delete', 'DELETE']]) {
      const r = rec(label, await call(f, method, `/v1/users/${ABSENT}`, { token: ADMIN_TOKEN, json }));
      assert.equal(r.status, 404, label);
      assert.equal(r.json.code, 'NOT_FOUND');
    }
    // The largest int64 id reaches the service exactly (no rounding on the way).
    assert.equal(rec('int64-max', await call(f, 'GET', '/v1/users/9223372036854775807', { token: READER_TOKEN })).status, 404);
  },

  async batchKeepsOrderAndOmitsMissing(f, rec) {
    const a = (await call(f, 'POST', '/v1/users', { token: ADMIN_TOKEN, json: draft(unique('batch')) })).json;
    const b = (await call(f, 'POST', '/v1/users', { token: ADMIN_TOKEN, json: draft(unique('batch')) })).json;
    const r = rec('batch', await call(f, 'POST', '/v1/users:batchGet', { token: READER_TOKEN, json: { ids: [b.id, ABSENT, a.id, b.id] } }));
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.users, [b, a, b]);
    for (const [label, json] of [['empty', { ids: [] }], ['absent', {}], ['too-many', { ids: Array(1001).fill(a.id) }],
      ['not-array', { ids: 5 }], ['fraction', { ids: [1.5] }], ['text', { ids: ['1'] }]]) {
      const bad = rec(label, await call(f, 'POST', '/v1/users:batchGet', { token: READER_TOKEN, json }));
      assert.equal(bad.status, 400, label);
      assert.equal(bad.json.field, 'ids', label);
    }
    assert.equal(rec('no-token', await call(f, 'POST', '/v1/users:batchGet', { json: { ids: [a.id] } })).status, 401);
  },

  async listPagesToTheEnd(f, rec) {
    const mine = [];
    for (let i = 0; i < 5; i++) {
      mine.push((await call(f, 'POST', '/v1/users', { token: ADMIN_TOKEN, json: draft(unique('page')) })).json.id);
    }
    let afterId = mine[0] - 1;
    const seen = [];
    for (let pages = 0; pages < 10000; pages++) {
      // Two per page over this scenario's users, then large pages to the end.
      const limit = pages < 3 ? 2 : 1000;
      const r = await call(f, 'GET', `/v1/users?after_id=${afterId}&limit=${limit}`, { token: READER_TOKEN });
      if (pages < 3) rec(`page-${pages}`, r);
      assert.equal(r.status, 200, r.text);
      assert.ok(r.json.users.length <= limit);
      seen.push(...r.json.users.map((u) => u.id));
      if (r.json.next_after_id === 0) break;
      afterId = r.json.next_after_id;
    }
    assert.deepEqual(seen.slice(0, 5), mine);
    assert.deepEqual([...seen].sort((x, y) => x - y), seen);
    assert.equal(rec('default-limit', await call(f, 'GET', '/v1/users', { token: READER_TOKEN })).status, 200);
    for (const [label, query, field] of [['limit-over', 'limit=1001', 'limit'], ['after-negative', 'after_id=-1&limit=10', 'after_id'],
      ['limit-text', 'limit=abc', 'limit'], ['after-text', 'after_id=1x', 'after_id'], ['after-empty', 'after_id=', 'after_id'],
      ['limit-over-int32', 'limit=99999999999', 'limit'], ['limit-zero-ok', 'limit=0', null]]) {
      const r = rec(label, await call(f, 'GET', `/v1/users?${query}`, { token: READER_TOKEN }));
      if (field) {
        assert.equal(r.status, 400, label);
        assert.equal(r.json.field, field, label);
      } else {
        assert.equal(r.status, 200, label);
      }
    }
  },

  async searchByPrefixOfUsernameOrEmail(f, rec) {
    // e.g. srch_a1b2c3_7x: the x ends it, so srch_a1b2c3_70x is no match.
    const base = `${unique('srch')}x`;
    const create = async (d) => (await call(f, 'POST', '/v1/users', { token: ADMIN_TOKEN, json: d })).json;
    const b = await create(draft(`${base}b`));
    const a = await create(draft(`${base}a`));
    const other = draft(unique('other'));
    other.email = `${base.toUpperCase()}Q@Example.com`;
    const e = await create(other);
    const expected = [a, b, e].sort((x, y) => (x.username < y.username ? -1 : x.username > y.username ? 1 : 0));
    const search = (query, token = READER_TOKEN) => call(f, 'GET', `/v1/users/search?${query}`, { token });
    let r = rec('all', await search(`prefix=${encodeURIComponent(base)}`));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.users, expected);
    r = rec('upper', await search(`prefix=${encodeURIComponent(base.toUpperCase())}`));
    assert.deepEqual(r.json.users, expected);
    r = rec('limit', await search(`prefix=${encodeURIComponent(base)}&limit=2`));
    assert.deepEqual(r.json.users, expected.slice(0, 2));
    r = rec('by-email', await search(`prefix=${encodeURIComponent(`${base.toUpperCase()}q@`)}`, ADMIN_TOKEN));
    assert.deepEqual(r.json.users, [e]);
    for (const [label, prefix] of [['none', `${base}zz_none`], ['percent', 'srch%'], ['underscore', `_${base.slice(1)}`], ['backslash', 'srch\\']]) {
      r = rec(label, await search(`prefix=${encodeURIComponent(prefix)}`));
      assert.equal(r.status, 200, label);
      assert.deepEqual(r.json.users, [], label);
    }
    for (const [label, query, field] of [['empty', 'prefix=', 'prefix'], ['missing', '', 'prefix'],
      ['too-long', `prefix=${'a'.repeat(255)}`, 'prefix'], ['space', 'prefix=a%20b', 'prefix'],
      ['limit-over', `prefix=${base}&limit=101`, 'limit'], ['limit-text', `prefix=${base}&limit=x`, 'limit']]) {
      r = rec(label, await search(query));
      assert.equal(r.status, 400, label);
      assert.equal(r.json.field, field, label);
    }
    assert.equal(rec('no-token', await call(f, 'GET', `/v1/users/search?prefix=${base}`)).status, 401);
    // The literal route is not /v1/users/{id} with the id "search".
    const patch = rec('patch-search', await call(f, 'PATCH', '/v1/users/search', { token: ADMIN_TOKEN, json: { full_name: 'x' } }));
    assert.equal(patch.status, 405);
    assert.equal(patch.headers.get('allow'), 'GET, HEAD');
  },

  async batchIdsAreExactInt64(f, rec) {
    const batch = async (label, ids) => rec(label, await call(f, 'POST', '/v1/users:batchGet',
      { token: READER_TOKEN, body: `{"ids":${ids}}`, type: 'application/json' }));
    const u = (await call(f, 'POST', '/v1/users', { token: ADMIN_TOKEN, json: draft(unique('exact')) })).json;
    // Beyond 2^53 (JavaScript numbers would round 2^53 + 1 to 2^53): exact, simply absent.
    const big = await batch('beyond-2^53', `[${u.id}, 9007199254740993, 9223372036854775807]`);
    assert.equal(big.status, 200, big.text);
    assert.deepEqual(big.json.users.map((x) => x.id), [u.id]);
    for (const [label, ids, detail] of [['float', '[1.0]', 'ids must be an array of 64-bit integers'],
      ['exponent', '[1e2]', 'ids must be an array of 64-bit integers'], ['beyond-int64', '[9223372036854775808]', 'ids must be an array of 64-bit integers'],
      ['int64-min', '[-9223372036854775808]', 'every id must be a positive integer'], ['string-id', '["1"]', 'ids must be an array of 64-bit integers']]) {
      const r = await batch(label, ids);
      assert.equal(r.status, 400, label);
      assert.equal(r.json.field, 'ids', label);
      if (detail) assert.equal(r.json.detail, detail, label);
    }
  },

  async malformedJsonSaysWhere(f, rec) {
    // The 1-based byte of the error, one past the end for a truncated text.
    for (const [label, body, at] of [['truncated', '{"a":', 6], ['bare-key', '{a:1}', 2], ['trailing', '{"a":1}}', 8],
      ['after-utf8', '{"a":"\u00e9', 9], ['empty', '', 1]]) {
      const r = rec(label, await call(f, 'POST', '/v1/users', { token: ADMIN_TOKEN, body, type: 'application/json' }));
      assert.equal(r.status, 400, label);
      assert.equal(r.json.detail, `malformed JSON at byte ${at}`, label);
    }
  },

  async deeplyNestedBodiesAreInvalidInput(f, rec) {
    const depth = 10000;
    const arrays = `${'['.repeat(depth)}1${']'.repeat(depth)}`;
    const objects = `${'{"k":'.repeat(depth)}1${'}'.repeat(depth)}`;
    for (const [label, method, path, body, field] of [['batch-arrays', 'POST', '/v1/users:batchGet', `{"ids":${arrays}}`, 'ids'],
      ['batch-objects', 'POST', '/v1/users:batchGet', `{"ids":[1,${objects}]}`, 'ids'],
      ['create-objects', 'POST', '/v1/users', `{"username":${objects}}`, 'username'],
      ['create-arrays', 'POST', '/v1/users', arrays, undefined],
      ['update-arrays', 'PATCH', '/v1/users/1', `{"email":${arrays}}`, 'email']]) {
      const r = rec(label, await call(f, method, path, { token: ADMIN_TOKEN, body, type: 'application/json' }));
      assert.equal(r.status, 400, `${label}: ${r.text}`);
      assert.equal(mediaType(r.headers.get('content-type')), 'application/problem+json', label);
      assert.equal(r.json.code, 'INVALID_ARGUMENT', label);
      assert.equal(r.json.field, field, label);
    }
  },

  async restBodiesAndRoutes(f, rec) {
    const u = (await call(f, 'POST', '/v1/users', { token: ADMIN_TOKEN, json: draft(unique('rest')) })).json;
    const expect = (r, status, label) => {
      assert.equal(r.status, status, `${label}: ${r.text}`);
      assert.equal(mediaType(r.headers.get('content-type')), 'application/problem+json', label);
    };
    expect(rec('text-plain', await call(f, 'POST', '/v1/users', { token: ADMIN_TOKEN, body: '{}', type: 'text/plain' })), 415, 'text/plain');
    expect(rec('no-type', await call(f, 'POST', '/v1/users', { token: ADMIN_TOKEN, body: '{}' })), 415, 'no type');
    assert.equal(rec('merge-json', await call(f, 'PATCH', `/v1/users/${u.id}`,
      { token: ADMIN_TOKEN, json: { full_name: 'Merge' }, type: 'application/merge-patch+json; charset=utf-8' })).status, 200);
    expect(rec('malformed', await call(f, 'POST', '/v1/users', { token: ADMIN_TOKEN, body: '{"username":', type: 'application/json' })), 400, 'malformed');
    expect(rec('array-body', await call(f, 'POST', '/v1/users', { token: ADMIN_TOKEN, body: '[1,2]', type: 'application/json' })), 400, 'array');
    // Who may not run the operation learns that first, whatever is wrong with the input.
    expect(rec('malformed-no-token', await call(f, 'POST', '/v1/users', { body: 'nope', type: 'application/json' })), 401, 'order');
    expect(rec('text-no-token', await call(f, 'POST', '/v1/users', { body: '{}', type: 'text/plain' })), 401, 'order, media type');
    expect(rec('bad-id-no-token', await call(f, 'GET', '/v1/users/abc', {})), 401, 'order, path');
    expect(rec('malformed-reader', await call(f, 'POST', '/v1/users', { token: READER_TOKEN, body: 'nope', type: 'application/json' })), 403, 'order, role');
    expect(rec('bad-id-reader', await call(f, 'GET', '/v1/users/abc', { token: READER_TOKEN })), 400, 'admitted: the input error');
    expect(rec('too-large', await call(f, 'POST', '/v1/users',
      { token: ADMIN_TOKEN, body: JSON.stringify({ full_name: 'x'.repeat(1100 * 1024) }), type: 'application/json' })), 413, 'too large');
    expect(rec('no-route', await call(f, 'GET', '/v1/nothing-here', { token: READER_TOKEN })), 404, 'no route');
    expect(rec('trailing-slash', await call(f, 'GET', '/v1/users/', { token: READER_TOKEN })), 404, 'trailing slash');
    for (const [label, method, path] of [['put-user', 'PUT', `/v1/users/${u.id}`], ['delete-users', 'DELETE', '/v1/users'],
      ['get-batch', 'GET', '/v1/users:batchGet'], ['post-ping', 'POST', '/v1/ping']]) {
      const r = rec(label, await call(f, method, path, { token: ADMIN_TOKEN }));
      expect(r, 405, label);
      assert.ok(r.headers.get('allow'), label);
    }
  },
};

describe('REST gateway matches the C++ REST face', () => {
  for (const [name, scenario] of Object.entries(SCENARIOS)) {
    it(name, async () => {
      const transcripts = [];
      for (const face of faces) {
        const transcript = [];
        const rec = (label, r) => {
          transcript.push([label, summary(face, r)]);
          return r;
        };
        try {
          await scenario(face, rec);
        } catch (err) {
          err.message = `[${face.name}] ${err.message}`;
          throw err;
        }
        transcripts.push(transcript);
      }
      assert.ok(transcripts[0].length > 0);
      assert.deepEqual(transcripts[1], transcripts[0], 'gateway answers differ from the C++ REST face');
    });
  }
});
