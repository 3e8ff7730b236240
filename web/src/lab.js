// The protocol lab: a short live comparison of the protocols against the
// running server, made by the project's own load generator (polycrud-bench,
// one protocol after the other, its --progress-json lines passed on as they
// come), and the wire view: one real GetUser per protocol captured by
// polycrud-wire. One comparison at a time in this process; admin only (the
// routes check). Runs are bounded: 1-30 s per protocol, 1-64 connections.
'use strict';

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const EventEmitter = require('node:events');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

// Protocols in the order a comparison runs them, with what the page calls them.
const LAB_PROTOCOLS = Object.freeze({
  thrift: 'Thrift (binary)',
  'thrift-compact': 'Thrift (compact)',
  grpc: 'gRPC',
  soap: 'SOAP',
  rest: 'REST',
  web: 'Gateway (REST through this console)',
});
// polycrud-bench arguments of each operation. The mix leaves out creates, so
// a lab run adds no users; its updates rewrite the full name of ids drawn.
const OPERATIONS = Object.freeze({
  ping: { title: 'Ping', args: ['--mix', 'ping=1'] },
  get: { title: 'Cached GetUser', args: ['--mix', 'get=1', '--keys', 'uniform'] },
  mix: { title: '95% get, 5% update', args: ['--mix', 'get=95,update=5', '--keys', 'zipf'] },
});
const LIMITS = Object.freeze({ minSeconds: 1, maxSeconds: 30, minConnections: 1, maxConnections: 64 });
// Beyond its warm-up and window, how long a protocol's run may take before it is killed.
const RUN_SLACK_MS = 20000;
const WIRE_TIMEOUT_MS = 10000;
const STDERR_KEEP = 4096; // bytes of a failed run's messages kept for its error
const MAX_STDOUT = 16 * 1024 * 1024; // the largest wire document read

class LabError extends Error {
  /** code: INVALID_ARGUMENT (field set), RESOURCE_EXHAUSTED (busy) or UNAVAILABLE. */
  constructor(code, message, { field = '', retryAfterMs = 0 } = {}) {
    super(message);
    this.code = code;
    this.field = field;
    this.retryAfterMs = retryAfterMs;
  }
}

const invalid = (field, message) => new LabError('INVALID_ARGUMENT', message, { field });

function wholeNumber(params, name, min, max, fallback) {
  const text = params.get(name);
  if (text === null || text === '') return fallback;
  if (!/^[0-9]{1,6}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw invalid(name, `${name} must be a whole number from ${min} to ${max}`);
  }
  return Number(text);
}

/**
 * The comparison a query asks for (URLSearchParams): protocols (comma
 * separated, at least one, no repeats), op, seconds, connections. Throws
 * LabError INVALID_ARGUMENT naming the field.
 */
function parseCompare(params) {
  const list = (params.get('protocols') || '').split(',').map((p) => p.trim()).filter(Boolean);
  if (list.length === 0) throw invalid('protocols', 'protocols must name at least one of ' + Object.keys(LAB_PROTOCOLS).join(', '));
  for (const p of list) {
    if (!Object.hasOwn(LAB_PROTOCOLS, p)) {
      throw invalid('protocols', `unknown protocol '${p.slice(0, 32)}' (known: ${Object.keys(LAB_PROTOCOLS).join(', ')})`);
    }
  }
  if (new Set(list).size !== list.length) throw invalid('protocols', 'protocols must not repeat');
  const op = params.get('op') || 'get';
  if (!Object.hasOwn(OPERATIONS, op)) throw invalid('op', 'op must be ping, get or mix');
  return {
    // Always in the lab's order, so every comparison reads the same way.
    protocols: Object.keys(LAB_PROTOCOLS).filter((p) => list.includes(p)),
    op,
    seconds: wholeNumber(params, 'seconds', LIMITS.minSeconds, LIMITS.maxSeconds, 5),
    connections: wholeNumber(params, 'connections', LIMITS.minConnections, LIMITS.maxConnections, 16),
  };
}

/** A short, stable name for a token in logs and on the page (never the token). */
const tokenTag = (token) => 'token ' + crypto.createHash('sha256').update(String(token)).digest('hex').slice(0, 8);

function readPid(file) {
  if (!file) return null;
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && fs.existsSync(`/proc/${pid}/stat`) ? pid : null;
  } catch {
    return null;
  }
}

/** One row of the results from a polycrud-bench result document. */
function resultRow(protocol, doc) {
  const cpu = doc.server_cpu && Number.isFinite(doc.server_cpu.per_request_us) ? doc.server_cpu.per_request_us : null;
  return {
    protocol,
    requests_per_s: doc.throughput_rps,
    p50_ms: doc.latency_ms.p50,
    p99_ms: doc.latency_ms.p99,
    bytes_per_call: doc.bytes_sent_per_request + doc.bytes_received_per_request,
    server_cpu_us_per_call: cpu,
    requests: doc.requests,
    errors: doc.error_count,
  };
}

/**
 * Runs one of the project's tools with the caller's token in its environment
 * (never on the command line, which ps shows), killed after timeoutMs.
 * onLine(line) sees each line of its stderr and returns true when it used
 * the line; the others are kept (the last STDERR_KEEP bytes) as messages.
 * Resolves to { code, signal, stdout (a Buffer, with `stdout`; empty past
 * MAX_STDOUT), messages }.
 */
function runTool(file, args, { token, timeoutMs, stdout = false, onLine = () => false, onSpawn = () => {} }) {
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      env: { PATH: process.env.PATH, POLYCRUD_TOKEN: token },
      stdio: ['ignore', stdout ? 'pipe' : 'ignore', 'pipe'],
    });
    onSpawn(child);
    const out = [];
    let size = 0;
    if (stdout) {
      child.stdout.on('data', (chunk) => {
        size += chunk.length;
        if (size <= MAX_STDOUT) out.push(chunk);
      });
    }
    let messages = '';
    let pending = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text) => {
      pending += text;
      let newline;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (!onLine(line)) messages = (messages + line + '\n').slice(-STDERR_KEEP);
      }
      if (pending.length > STDERR_KEEP) pending = pending.slice(-STDERR_KEEP);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    let settled = false;
    const finish = (result) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    child.once('error', (err) => finish({ code: null, signal: null, stdout: Buffer.alloc(0), messages: err.message }));
    child.once('close', (code, signal) => finish({ code, signal, stdout: size <= MAX_STDOUT ? Buffer.concat(out) : Buffer.alloc(0),
      messages: messages + pending }));
  });
}

/** A failed tool's last message (its own name prefix dropped), or its exit status. */
function lastMessage(exit, tool) {
  const line = exit.messages.trim().split('\n').pop() || `exit ${exit.code ?? exit.signal}`;
  return line.startsWith(`${tool}: `) ? line.slice(tool.length + 2) : line;
}

/**
 * Runs comparisons and wire captures. options: benchPath, wirePath, host
 * (of the server's faces), webHost (of this console), ports ({ protocol: port or null when that face is not
 * reachable }), separateCompact (thrift-compact is another server's), tls
 * ({ ca, cert, key } or null), serverPidFile, minId and
 * maxId (the ids gets and updates draw), logger.
 */
class LabRunner {
  constructor(options) {
    this.options = options;
    this.current = null; // the comparison running now
    this.wireBusy = false;
    this.closed = false;
  }

  /** Why each protocol cannot run here (null: it can), for the page and the API. */
  availability() {
    const out = {};
    const bench = this.#executable(this.options.benchPath);
    for (const protocol of Object.keys(LAB_PROTOCOLS)) {
      if (!bench) out[protocol] = `the load generator is not built (${this.options.benchPath})`;
      else if (!this.options.ports[protocol]) {
        out[protocol] = protocol === 'thrift-compact'
          ? 'no server speaks Thrift compact here (give --lab-thrift-compact-port)'
          : `no port is configured for ${protocol}`;
      } else if (protocol === 'soap' && this.options.tls) out[protocol] = 'the SOAP client has no TLS';
      else out[protocol] = null;
    }
    return out;
  }

  /** The running comparison as the page and the API show it, or null. */
  status() {
    const run = this.current;
    if (!run) return null;
    return {
      who: run.who,
      protocols: run.request.protocols,
      op: run.request.op,
      seconds: run.request.seconds,
      connections: run.request.connections,
      started_at_ms: run.startedAt,
      running: run.protocol,
      results: run.results,
    };
  }

  /**
   * Starts a comparison for `who` (shown to others) with the caller's token.
   * Returns an EventEmitter: 'protocol' ({ protocol }), 'progress' (a bench
   * progress line plus protocol), 'result' (a row), 'done' ({ results }).
   * Throws LabError when busy or a chosen protocol cannot run. stop() ends
   * it early (the client went away).
   */
  start(request, { who, token }) {
    if (this.closed) throw new LabError('UNAVAILABLE', 'the console is shutting down');
    if (this.current) {
      const run = this.current;
      const leftMs = Math.max(1000, run.deadline - Date.now());
      throw new LabError('RESOURCE_EXHAUSTED',
        `a comparison is running (${run.who}: ${run.request.protocols.join(', ')}, ${run.request.op}, ` +
        `${run.request.seconds} s each); one runs at a time`, { retryAfterMs: leftMs });
    }
    const availability = this.availability();
    for (const protocol of request.protocols) {
      if (availability[protocol]) throw invalid('protocols', `${protocol} cannot run here: ${availability[protocol]}`);
    }
    const warmupS = request.seconds >= 5 ? 1 : 0.5;
    const run = new EventEmitter();
    Object.assign(run, {
      request, who, token, warmupS,
      startedAt: Date.now(),
      deadline: Date.now() + request.protocols.length * (warmupS * 1000 + request.seconds * 1000 + 2000),
      protocol: null,
      results: [],
      child: null,
      stopped: false,
    });
    run.stop = () => {
      run.stopped = true;
      if (run.child) run.child.kill('SIGTERM');
    };
    this.current = run;
    this.options.logger.info({ who, protocols: request.protocols, op: request.op, seconds: request.seconds,
      connections: request.connections }, 'lab: comparison started');
    // Begins after the caller has attached its listeners.
    new Promise(setImmediate).then(() => this.#runAll(run))
      .catch((err) => this.options.logger.error({ err }, 'lab: comparison failed'))
      .finally(() => {
        this.current = null;
        this.options.logger.info({ who, stopped: run.stopped, results: run.results.length }, 'lab: comparison ended');
        run.emit('done', { results: run.results });
      });
    return run;
  }

  async #runAll(run) {
    for (const protocol of run.request.protocols) {
      if (run.stopped || this.closed) break;
      run.protocol = protocol;
      run.emit('protocol', { protocol });
      const row = await this.#runOne(run, protocol);
      run.results.push(row);
      run.emit('result', row);
    }
    run.protocol = null;
  }

  #benchArgs(run, protocol, jsonPath) {
    const { request, warmupS } = run;
    const o = this.options;
    const args = ['--protocol', protocol, '--host', protocol === 'web' ? o.webHost : o.host, '--port', String(o.ports[protocol]),
      ...OPERATIONS[request.op].args, '--min-id', String(o.minId), '--max-id', String(o.maxId),
      '--connections', String(request.connections), '--warmup-s', String(warmupS),
      '--duration-s', String(request.seconds), '--progress-json', '--json', jsonPath,
      '--label', `lab-${protocol}`, '--timeout-ms', '5000'];
    const pids = [];
    // The pid file is the server's whose faces these are; a compact Thrift
    // face on a port of its own belongs to another server.
    const serverPid = protocol === 'thrift-compact' && o.separateCompact ? null : readPid(o.serverPidFile);
    if (serverPid) pids.push(serverPid);
    // The gateway's calls cost this process too: its CPU counts with the server's.
    if (protocol === 'web' && serverPid) pids.push(process.pid);
    if (pids.length) args.push('--server-pid', pids.join(','));
    if (o.tls && protocol !== 'soap') {
      args.push('--tls-ca', o.tls.ca);
      if (o.tls.cert) args.push('--tls-cert', o.tls.cert, '--tls-key', o.tls.key);
    }
    return args;
  }

  // Runs polycrud-bench for one protocol; resolves to its row ({ protocol, error } on failure).
  async #runOne(run, protocol) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'polycrud-lab-'));
    const jsonPath = path.join(dir, 'result.json');
    try {
      const exit = await runTool(this.options.benchPath, this.#benchArgs(run, protocol, jsonPath), {
        token: run.token,
        timeoutMs: (run.warmupS + run.request.seconds) * 1000 + RUN_SLACK_MS,
        onSpawn: (child) => {
          run.child = child;
        },
        // Progress lines go to the run's listeners; anything else is a message.
        onLine: (line) => {
          if (!line.startsWith('{')) return false;
          try {
            run.emit('progress', { protocol, ...JSON.parse(line) });
            return true;
          } catch {
            return false;
          }
        },
      });
      run.child = null;
      if (exit.code !== 0) {
        const reason = run.stopped ? 'stopped' : lastMessage(exit, 'polycrud-bench');
        this.options.logger.warn({ protocol, exit: exit.code, signal: exit.signal, reason }, 'lab: run failed');
        return { protocol, error: reason };
      }
      return resultRow(protocol, JSON.parse(fs.readFileSync(jsonPath, 'utf8')));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Captures one GetUser of `id` on `protocol` with the caller's token: polycrud-wire's document. */
  async wire(protocol, id, token) {
    if (!Object.hasOwn(LAB_PROTOCOLS, protocol)) throw invalid('protocol', `unknown protocol '${String(protocol).slice(0, 32)}'`);
    if (this.options.tls) throw new LabError('UNAVAILABLE', 'the faces speak TLS here: their bytes on the wire are ciphertext');
    if (!this.options.ports[protocol]) throw new LabError('UNAVAILABLE', this.availability()[protocol] || 'not available');
    if (!this.#executable(this.options.wirePath)) {
      throw new LabError('UNAVAILABLE', `the wire capture tool is not built (${this.options.wirePath})`);
    }
    if (this.wireBusy) throw new LabError('RESOURCE_EXHAUSTED', 'a capture is running', { retryAfterMs: 1000 });
    this.wireBusy = true;
    try {
      const exit = await runTool(this.options.wirePath, ['--protocol', protocol,
        '--host', protocol === 'web' ? this.options.webHost : this.options.host,
        '--port', String(this.options.ports[protocol]), '--id', String(id), '--timeout-ms', '5000'],
      { token, timeoutMs: WIRE_TIMEOUT_MS, stdout: true });
      if (exit.code !== 0) throw new LabError('UNAVAILABLE', `the capture failed: ${lastMessage(exit, 'polycrud-wire')}`);
      try {
        return JSON.parse(exit.stdout.toString('utf8'));
      } catch {
        throw new LabError('UNAVAILABLE', 'the capture failed: no readable document');
      }
    } finally {
      this.wireBusy = false;
    }
  }

  /** Stops a running comparison (shutdown). */
  close() {
    this.closed = true;
    if (this.current) this.current.stop();
  }

  #executable(file) {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * Streams a run as server-sent events on `res` (event names as the run's),
 * starting with 'start' (the run's status); stops the run when the client
 * goes away. A comment every 15 s keeps proxies from closing the stream.
 */
function streamRun(req, res, run, status) {
  res.status(200);
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Accel-Buffering', 'no');
  res.flushHeaders();
  const send = (event, data) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  send('start', status);
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15000);
  for (const event of ['protocol', 'progress', 'result']) run.on(event, (data) => send(event, data));
  run.once('done', (data) => {
    clearInterval(keepAlive);
    send('done', data);
    res.end();
  });
  res.once('close', () => {
    clearInterval(keepAlive);
    if (!res.writableFinished) run.stop();
  });
}

/** Sends an SSE stream that holds only an 'error' event (refused before it started). */
function streamError(res, status, err) {
  res.status(200);
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(`event: error\ndata: ${JSON.stringify({ status, code: err.code, detail: err.message, field: err.field || undefined })}\n\n`);
}

module.exports = { LabRunner, LabError, LAB_PROTOCOLS, OPERATIONS, LIMITS, parseCompare, streamRun, streamError, tokenTag, resultRow };
