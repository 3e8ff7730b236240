// The protocol lab against real servers: polycrud-server with all four faces
// (and a second one speaking Thrift compact), polycrud-web in front, and the
// project's polycrud-bench and polycrud-wire run by the lab. Runs are short
// (1-2 s per protocol); no speed is asserted, only that every figure is there
// and real, and the rules: admin only, bounds, one run at a time, a run
// stopped when its client goes away.
'use strict';

const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { after, before, describe, it } = require('node:test');
const { Session } = require('./support/browser_session');
const { CHROMIUM, CHROMIUM_ARGS } = require('./support/chromium');
const { ADMIN_TOKEN, READER_TOKEN, freePort, outputDir, settings, startServer, startWeb, unique } = require('./support/stack');

let server;
let compact;
let web;
let userId;
let username;

const ALL = ['thrift', 'thrift-compact', 'grpc', 'soap', 'rest', 'web'];

before(async () => {
  server = await startServer('lab', { protocols: ['thrift', 'grpc', 'soap', 'rest'] });
  compact = await startServer('lab-compact', { protocols: ['thrift'], env: { POLYCRUD_THRIFT_PROTOCOL: 'compact' } });
  const s = settings();
  // Ten users: the lab's gets and updates draw their ids (--lab-min-id/--lab-max-id).
  const ids = [];
  for (let i = 0; i < 10; i += 1) {
    const name = unique('lab');
    const res = await fetch(`${server.restBase}/v1/users`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: name, email: `${name}@example.com`, full_name: 'Lab User' }),
    });
    const body = await res.text();
    assert.equal(res.status, 201, body);
    ids.push(JSON.parse(body).id);
    if (i === 0) username = name;
  }
  userId = ids[0];
  assert.equal(ids[9] - ids[0], 9);
  web = await startWeb('lab', server.thriftPort, [
    '--grpc-port', String(server.ports.grpc), '--soap-port', String(server.ports.soap),
    '--rest-port', String(server.ports.rest), '--lab-thrift-compact-port', String(compact.thriftPort),
    '--lab-bench', s.POLYCRUD_BENCH_BINARY, '--lab-wire', s.POLYCRUD_WIRE_BINARY,
    '--lab-server-pidfile', server.pidFile, '--lab-min-id', String(ids[0]), '--lab-max-id', String(ids[9])]);
});

after(async () => {
  if (web) await web.stop();
  if (compact) await compact.stop();
  if (server) await server.stop();
});

const api = (path, { token = ADMIN_TOKEN, headers = {} } = {}) =>
  fetch(`${web.base}/api/v1/lab${path}`, { headers: { Authorization: `Bearer ${token}`, ...headers } });

const compareQuery = (protocols, extra = '') => `/compare?protocols=${protocols.join(',')}&seconds=1&connections=2${extra}`;

// Reads a server-sent event stream to its end: [{ event, data }].
function readEvents(path, { token = ADMIN_TOKEN, cookie, stopAfter } = {}) {
  return new Promise((resolve, reject) => {
    const headers = { Accept: 'text/event-stream' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (cookie) headers.Cookie = cookie;
    const req = http.get(`${web.base}${path}`, { headers }, (res) => {
      const events = [];
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (text) => {
        buffer += text;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block);
          const data = /^data: (.*)$/m.exec(block);
          if (event) events.push({ event: event[1], data: data ? JSON.parse(data[1]) : null });
          if (stopAfter && event && stopAfter(events)) {
            req.destroy();
            resolve({ status: res.statusCode, headers: res.headers, events });
            return;
          }
        }
      });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, events }));
      res.on('error', reject);
    });
    req.on('error', (err) => (err.code === 'ECONNRESET' ? null : reject(err)));
  });
}

async function waitIdle() {
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    const info = await (await api('/status')).json();
    if (info.running === null) return info;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the lab is still running after 60 s');
}

function assertRow(row, protocol) {
  assert.equal(row.protocol, protocol);
  assert.equal(row.error, undefined, `${protocol}: ${row.error}`);
  assert.ok(row.requests_per_s > 0, `${protocol} requests_per_s`);
  assert.ok(row.p50_ms > 0 && row.p50_ms <= row.p99_ms, `${protocol} p50 ${row.p50_ms} p99 ${row.p99_ms}`);
  assert.ok(row.bytes_per_call > 0, `${protocol} bytes_per_call`);
  if (protocol === 'thrift-compact') {
    // Another server than the one of --lab-server-pidfile: its CPU is not known.
    assert.equal(row.server_cpu_us_per_call, null);
  } else {
    assert.equal(typeof row.server_cpu_us_per_call, 'number', `${protocol} server CPU`);
    assert.ok(row.server_cpu_us_per_call > 0, `${protocol} server CPU ${row.server_cpu_us_per_call}`);
  }
  assert.equal(row.errors, 0, `${protocol} errors`);
  assert.ok(row.requests > 0);
}

describe('lab API', () => {
  it('is for admins only', async () => {
    const none = await fetch(`${web.base}/api/v1/lab/status`);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    const reader = await api(compareQuery(['thrift'], '&op=ping'), { token: READER_TOKEN });
    assert.equal(reader.status, 403);
    assert.equal((await reader.json()).code, 'PERMISSION_DENIED');
    const post = await fetch(`${web.base}/api/v1/lab/compare`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.equal(post.status, 405);
  });

  it('refuses what is out of bounds, naming the field', async () => {
    for (const [query, field] of [
      ['/compare?protocols=&op=ping', 'protocols'],
      ['/compare?protocols=thrift,corba&op=ping', 'protocols'],
      ['/compare?protocols=thrift,thrift&op=ping', 'protocols'],
      ['/compare?protocols=thrift&op=delete', 'op'],
      ['/compare?protocols=thrift&seconds=0', 'seconds'],
      ['/compare?protocols=thrift&seconds=31', 'seconds'],
      ['/compare?protocols=thrift&seconds=1.5', 'seconds'],
      ['/compare?protocols=thrift&connections=65', 'connections'],
      ['/compare?protocols=thrift&connections=0', 'connections'],
      ['/wire?protocol=corba', 'protocol'],
      ['/wire?protocol=thrift&id=-1', 'id'],
    ]) {
      const res = await api(query);
      assert.equal(res.status, 400, query);
      const problem = await res.json();
      assert.equal(problem.code, 'INVALID_ARGUMENT', query);
      assert.equal(problem.field, field, query);
    }
    assert.equal((await waitIdle()).running, null);
  });

  it('says what it offers, and why a protocol is not there', async () => {
    const info = await (await api('/status')).json();
    assert.deepEqual(info.protocols.map((p) => p.protocol), ALL);
    for (const p of info.protocols) assert.equal(p.available, true, `${p.protocol}: ${p.reason}`);
    assert.deepEqual(info.limits, { seconds: [1, 30], connections: [1, 64] });
    assert.deepEqual(info.operations.map((o) => o.op), ['ping', 'get', 'mix']);
    assert.equal(info.running, null);
  });

  it('compares every protocol on ping and answers the contract\'s results', async () => {
    const res = await api(compareQuery(ALL, '&op=ping'));
    assert.equal(res.status, 200);
    const { results } = await res.json();
    assert.deepEqual(results.map((r) => r.protocol), ALL);
    for (const row of results) assertRow(row, row.protocol);
    // What students are meant to see: SOAP's envelope costs bytes.
    const bytes = Object.fromEntries(results.map((r) => [r.protocol, r.bytes_per_call]));
    assert.ok(bytes.soap > bytes.thrift, `soap ${bytes.soap} vs thrift ${bytes.thrift}`);
    assert.ok(bytes['thrift-compact'] <= bytes.thrift, `compact ${bytes['thrift-compact']} vs binary ${bytes.thrift}`);
  });

  it('streams a run as events: start, then per protocol its progress and result, then done', async () => {
    const run = await readEvents(`/api/v1/lab${compareQuery(['thrift', 'rest'], '&op=get')}`);
    assert.equal(run.status, 200);
    assert.match(run.headers['content-type'], /^text\/event-stream/);
    const names = run.events.map((e) => e.event);
    assert.equal(names[0], 'start');
    assert.equal(names.at(-1), 'done');
    assert.deepEqual(run.events[0].data.protocols, ['thrift', 'rest']);
    assert.match(run.events[0].data.who, /^token [0-9a-f]{8} \(API, /);
    for (const protocol of ['thrift', 'rest']) {
      const begins = run.events.findIndex((e) => e.event === 'protocol' && e.data.protocol === protocol);
      assert.ok(begins > 0, `no protocol event for ${protocol}`);
      assert.ok(run.events.slice(0, begins).every((e) => e.data.protocol !== protocol), `${protocol}: events before it began`);
      const progress = run.events.filter((e) => e.event === 'progress' && e.data.protocol === protocol);
      assert.ok(progress.length >= 2, `${protocol}: ${progress.length} progress events`);
      const measured = progress.filter((e) => e.data.phase === 'measuring' && e.data.p50_ms !== null);
      assert.ok(measured.length >= 1, `${protocol}: no measured progress`);
      assert.ok(measured.every((e) => e.data.p99_ms >= e.data.p50_ms && e.data.requests_per_s > 0));
      const result = run.events.find((e) => e.event === 'result' && e.data.protocol === protocol);
      assertRow(result.data, protocol);
    }
    assert.deepEqual(run.events.at(-1).data.results.map((r) => r.protocol), ['thrift', 'rest']);
  });

  it('runs one comparison at a time and says who runs what', async () => {
    let firstStarted;
    const started = new Promise((resolve) => {
      firstStarted = resolve;
    });
    const first = readEvents(`/api/v1/lab/compare?protocols=thrift&op=ping&seconds=2&connections=1`, {
      stopAfter: (events) => {
        if (events.length === 1) firstStarted();
        return false;
      },
    });
    await started;
    const second = await api(compareQuery(['grpc'], '&op=ping'));
    assert.equal(second.status, 429);
    assert.ok(Number(second.headers.get('retry-after')) >= 1);
    const problem = await second.json();
    assert.equal(problem.code, 'RESOURCE_EXHAUSTED');
    assert.match(problem.detail, /a comparison is running \(token [0-9a-f]{8} \(API, .*\): thrift, ping, 2 s each\)/);
    const status = await (await api('/status')).json();
    assert.deepEqual(status.running.protocols, ['thrift']);
    assert.equal(status.running.op, 'ping');
    const done = await first;
    assert.equal(done.events.at(-1).event, 'done');
    assertRow(done.events.at(-1).data.results[0], 'thrift');
    assert.equal((await waitIdle()).running, null);
  });

  it('stops a run whose client went away', async () => {
    const t0 = Date.now();
    // Thirty seconds on each of two protocols, abandoned at its first progress line.
    await readEvents('/api/v1/lab/compare?protocols=thrift,grpc&op=ping&seconds=30&connections=1', {
      stopAfter: (events) => events.some((e) => e.event === 'progress'),
    });
    await waitIdle();
    assert.ok(Date.now() - t0 < 20000, `the run went on for ${Date.now() - t0} ms`);
    // And the next one may start at once.
    const res = await api(compareQuery(['thrift'], '&op=ping'));
    assert.equal(res.status, 200);
    assertRow((await res.json()).results[0], 'thrift');
  });

  it('runs the 95/5 mix of gets and updates without an error', async () => {
    const res = await api(compareQuery(['thrift', 'grpc'], '&op=mix'));
    const { results } = await res.json();
    for (const row of results) assertRow(row, row.protocol);
  });
});

describe('lab when a face is down or dies mid-run', () => {
  let doomed;
  let faulty;
  before(async () => {
    // A console whose gRPC port has nothing behind it, and whose REST face is
    // a server of its own that the test kills during a run.
    doomed = await startServer('lab-doomed', { protocols: ['rest'] });
    const s = settings();
    faulty = await startWeb('lab-faulty', server.thriftPort, [
      '--grpc-port', String(await freePort()), '--rest-port', String(doomed.ports.rest),
      '--lab-bench', s.POLYCRUD_BENCH_BINARY, '--lab-wire', s.POLYCRUD_WIRE_BINARY]);
  });
  after(async () => {
    if (faulty) await faulty.stop();
    if (doomed) await doomed.stop();
  });
  const faultyApi = (path) => fetch(`${faulty.base}/api/v1/lab${path}`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });

  it('reports a face that does not answer as that protocol\'s error, and runs the others', async () => {
    const res = await faultyApi('/compare?protocols=thrift,grpc&op=ping&seconds=1&connections=1');
    assert.equal(res.status, 200);
    const { results } = await res.json();
    assert.deepEqual(results.map((r) => r.protocol), ['thrift', 'grpc']);
    assert.ok(results[0].requests_per_s > 0 && results[0].errors === 0, JSON.stringify(results[0]));
    assert.match(results[1].error, /no polycrud server answers ping/);
    assert.equal(results[1].requests_per_s, undefined);
    const wire = await faultyApi('/wire?protocol=grpc&id=1');
    assert.equal(wire.status, 503);
    const problem = await wire.json();
    assert.equal(problem.code, 'UNAVAILABLE');
    assert.match(problem.detail, /^the capture failed: /);
  });

  it('counts the failed calls of a face that dies mid-run and ends the run', async () => {
    let killed = false;
    const run = await new Promise((resolve, reject) => {
      const events = [];
      const req = http.get(`${faulty.base}/api/v1/lab/compare?protocols=rest&op=ping&seconds=3&connections=2`,
        { headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, Accept: 'text/event-stream' } }, (res) => {
          let buffer = '';
          res.setEncoding('utf8');
          res.on('data', (text) => {
            buffer += text;
            let end;
            while ((end = buffer.indexOf('\n\n')) >= 0) {
              const block = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              const event = /^event: (.*)$/m.exec(block)[1];
              const data = JSON.parse(/^data: (.*)$/m.exec(block)[1]);
              events.push({ event, data });
              if (!killed && event === 'progress' && data.phase === 'measuring') {
                killed = true;
                doomed.child.kill('SIGKILL');
              }
            }
          });
          res.on('end', () => resolve(events));
        });
      req.on('error', reject);
    });
    assert.ok(killed, 'the face was killed during the measured window');
    assert.equal(run.at(-1).event, 'done');
    const row = run.at(-1).data.results[0];
    assert.equal(row.protocol, 'rest');
    assert.equal(row.error, undefined, row.error);
    assert.ok(row.errors > 0, `failed calls counted: ${JSON.stringify(row)}`);
    assert.equal((await (await faultyApi('/status')).json()).running, null);
  });
});

describe('lab wire view', () => {
  for (const protocol of ALL) {
    it(`captures one GetUser on ${protocol} as annotated bytes`, async () => {
      const res = await api(`/wire?protocol=${protocol}&id=${userId}`);
      assert.equal(res.status, 200, await res.clone().text());
      const doc = await res.json();
      assert.equal(doc.protocol, protocol);
      assert.equal(doc.outcome.code, 'OK');
      for (const direction of ['request', 'response']) {
        const d = doc[direction];
        assert.ok(d.bytes > 0);
        assert.equal(d.hex.length, 2 * d.bytes);
        let offset = 0;
        for (const part of d.parts) {
          assert.equal(part.offset, offset, `${protocol} ${direction}: parts are contiguous`);
          offset += part.length;
        }
        assert.equal(offset, d.bytes);
      }
      const text = JSON.stringify(doc);
      assert.ok(!text.includes(ADMIN_TOKEN), 'the token is masked');
      assert.ok(!text.includes(Buffer.from(ADMIN_TOKEN).toString('hex')), 'the token is masked in the hex too');
      assert.ok(text.includes(username), 'the answer holds the user');
    });
  }
});

describe('lab page', () => {
  it('is a page for admins with its own script allowed, and a read-only console has none', async () => {
    const admin = new Session(web.base);
    await admin.signIn(ADMIN_TOKEN);
    const page = await admin.get('/lab');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy'), /script-src 'self'/);
    assert.match(page.text, /<script src="\/assets\/lab\.js" defer><\/script>/);
    assert.match(page.text, /data-csrf="[^"]+"/);
    const reader = new Session(web.base);
    await reader.signIn(READER_TOKEN);
    assert.equal((await reader.get('/lab')).status, 403);
    const users = await reader.get('/users');
    assert.doesNotMatch(users.text, /href="\/lab"/);
    assert.match((await admin.get('/users')).text, /href="\/lab"/);
  });

  it('streams a run only with the page\'s CSRF token', async () => {
    const admin = new Session(web.base);
    await admin.signIn(ADMIN_TOKEN);
    await admin.get('/lab');
    const cookie = [...admin.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const refused = await readEvents('/lab/events?protocols=thrift&op=ping&seconds=1&connections=1&csrf=wrong', { token: null, cookie });
    assert.deepEqual(refused.events.map((e) => e.event), ['error']);
    assert.equal(refused.events[0].data.status, 403);
    const run = await readEvents(`/lab/events?protocols=thrift&op=ping&seconds=1&connections=1&csrf=${encodeURIComponent(admin.csrf)}`,
      { token: null, cookie });
    assert.equal(run.events.at(-1).event, 'done');
    assertRow(run.events.at(-1).data.results[0], 'thrift');
    assert.match(run.events[0].data.who, /\(console, /);
  });
});

describe('lab in Chromium', () => {
  let browser;
  before(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60000 });
  });
  after(async () => {
    if (browser) await browser.close();
  });

  it('runs a two-second comparison and charts every chosen protocol, then shows each one\'s bytes', async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 }, baseURL: web.base });
    const page = await context.newPage();
    page.setDefaultTimeout(30000);
    const failures = [];
    page.on('pageerror', (err) => failures.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') failures.push(msg.text());
    });
    try {
      await page.goto('/');
      await page.getByLabel('Bearer token').fill(ADMIN_TOKEN);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL('**/users');
      await page.getByRole('link', { name: 'Protocol lab' }).click();
      await page.waitForURL('**/lab');
      const chosen = { thrift: 'Thrift (binary)', grpc: 'gRPC', soap: 'SOAP', rest: 'REST' };
      for (const box of await page.locator('input[name=protocols]').all()) {
        const value = await box.getAttribute('value');
        if (Object.hasOwn(chosen, value)) await box.check();
        else await box.uncheck();
      }
      await page.getByLabel('Operation').selectOption('get');
      await page.getByLabel('Seconds per protocol').fill('2');
      await page.getByLabel('Connections').fill('4');
      await page.getByRole('button', { name: 'Run the comparison' }).click();
      // While it runs: the page says so, and the charts fill as it goes.
      await page.waitForSelector('#lab[data-state=running]');
      await page.waitForSelector('#lab-throughput canvas');
      await page.waitForFunction(() => document.querySelectorAll('#lab-results tbody tr').length === 4, null, { timeout: 60000 });
      await page.waitForSelector('#lab[data-state=idle]');
      assert.match(await page.locator('#lab-status').innerText(), /Done: 4 protocols compared/);
      const rows = await page.locator('#lab-results tbody tr').evaluateAll((trs) => trs.map((tr) =>
        [...tr.children].map((td) => td.textContent)));
      assert.deepEqual(rows.map((r) => r[0]), Object.values(chosen));
      for (const row of rows) {
        assert.ok(Number(row[1].replace(/,/g, '')) > 0, `requests/s of ${row[0]}: ${row[1]}`);
        assert.equal(row[6], '0', `errors of ${row[0]}`);
      }
      // Every chosen protocol has its series in both charts.
      const legend = async (id) => page.locator(`#${id} .u-legend .u-series .u-label`).allTextContents();
      const throughput = await legend('lab-throughput');
      const latency = await legend('lab-latency');
      for (const name of Object.values(chosen)) {
        assert.ok(throughput.includes(name), `${name} in ${throughput}`);
        assert.ok(latency.includes(`${name} p50`) && latency.includes(`${name} p99`), `${name} in ${latency}`);
      }
      await page.screenshot({ path: path.join(outputDir('screenshots'), 'lab-01-comparison.png'), fullPage: true });

      // The wire view of the same protocols.
      await page.getByLabel('User id').fill(String(userId));
      await page.getByRole('button', { name: 'Capture the checked protocols' }).click();
      await page.waitForFunction(() => document.querySelectorAll('#wire-out .wire-protocol').length === 4, null, { timeout: 60000 });
      for (const protocol of Object.keys(chosen)) {
        const section = page.locator(`#wire-out .wire-protocol[data-protocol="${protocol}"]`);
        assert.equal(await section.locator('p.error').count(), 0, await section.innerText());
        const headings = await section.locator('h4').allInnerTexts();
        assert.equal(headings.length, 2);
        assert.match(headings[0], /^Request: [\d,]+ bytes$/);
        assert.ok(await section.locator('td.hex').count() > 3);
        const sizes = await page.locator(`#wire-sizes tr[data-protocol="${protocol}"] td`).allInnerTexts();
        assert.equal(sizes[2], 'OK');
        assert.ok(Number(sizes[0].replace(/,/g, '')) > 0 && Number(sizes[1].replace(/,/g, '')) > 0);
      }
      assert.ok((await page.locator('#wire-out').innerText()).includes(username));
      await page.screenshot({ path: path.join(outputDir('screenshots'), 'lab-02-wire.png'), fullPage: true });
      assert.deepEqual(failures, []);
    } catch (err) {
      await page.screenshot({ path: path.join(outputDir('screenshots'), 'FAILED-lab.png'), fullPage: true }).catch(() => {});
      throw err;
    } finally {
      await context.close();
    }
  });
});
