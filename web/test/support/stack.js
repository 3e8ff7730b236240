// Test helpers: a private polycrud-server (on the CTest test stack's MariaDB
// and Redis, with test tokens, on free ports) and a private polycrud-web in
// front of it. Processes are stopped by after() hooks and, as a last resort,
// when the test process exits, so a failing test leaves nothing running.
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const WEB_DIR = path.resolve(__dirname, '..', '..');
const ADMIN_TOKEN = 'web-test-admin-token';
const READER_TOKEN = 'web-test-reader-token';

const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
// Interrupted (Ctrl-C, or the runner stopping this file): the same clean-up.
for (const [signal, number] of [['SIGINT', 2], ['SIGTERM', 15]]) {
  process.once(signal, () => process.exit(128 + number));
}

/** The test stack's settings (tests/CMakeLists.txt); the environment overrides each. */
function settings() {
  const file = process.env.POLYCRUD_TEST_SETTINGS_FILE;
  if (!file) throw new Error('POLYCRUD_TEST_SETTINGS_FILE is not set (run through ctest)');
  const values = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) {
      const key = line.slice(0, eq);
      values[key] = process.env[key] || line.slice(eq + 1);
    }
  }
  return values;
}

/** Where tests write logs and screenshots. */
function outputDir(sub = '') {
  const dir = path.join(process.env.POLYCRUD_WEB_TEST_OUTPUT || path.join(os.tmpdir(), 'polycrud-web-test-output'), sub);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

// Whether a server could listen on 127.0.0.1:port now.
function canListen(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

// A port that was free a moment ago, below the kernel's ephemeral range: a
// port listen(0) hands out could be taken by any outgoing connection before
// the server binds it (tests/support/server_process.cc does the same).
async function freePort() {
  const range = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
  const ephemeralLow = Number(range.trim().split(/\s+/)[0]);
  const first = Math.max(1024, ephemeralLow - 16384);
  for (let attempt = 0; attempt < 1000; attempt += 1) {
    const port = first + Math.floor(Math.random() * (ephemeralLow - first));
    if (await canListen(port)) return port;
  }
  throw new Error('no free port below the ephemeral range');
}

function portOpen(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitForPorts(child, ports, what, logFile) {
  const deadline = Date.now() + 30000;
  for (const port of ports) {
    while (!(await portOpen(port))) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${what} exited during start-up; log: ${logFile}\n${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
      }
      if (Date.now() > deadline) throw new Error(`${what} did not open port ${port} within 30 s; log: ${logFile}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function launch(command, args, env, logFile) {
  const log = fs.openSync(logFile, 'w'); // one run's log per file
  const child = spawn(command, args, { env, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Sends SIGTERM and waits for the exit; resolves with the exit code (SIGKILL after 15 s). */
function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 15000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    child.kill('SIGTERM');
  });
}

const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');

/**
 * Starts polycrud-server with the Thrift and REST faces (or the faces named
 * in `protocols`) on free ports (or the Thrift port given); env adds settings
 * (e.g. POLYCRUD_TLS_CERT). ports maps each face to its port; pidFile holds
 * the server's pid.
 */
async function startServer(name, { thriftPort: fixedThriftPort, env: extraEnv = {}, protocols = ['thrift', 'rest'] } = {}) {
  const s = settings();
  const ports = {};
  for (const protocol of protocols) {
    ports[protocol] = protocol === 'thrift' && fixedThriftPort ? fixedThriftPort : await freePort();
  }
  const thriftPort = ports.thrift;
  const restPort = ports.rest;
  const logFile = path.join(outputDir('logs'), `${name}-server.log`);
  const env = {
    PATH: process.env.PATH,
    POLYCRUD_PROTOCOLS: protocols.join(','),
    POLYCRUD_MYSQL_HOST: s.POLYCRUD_TEST_MYSQL_HOST,
    POLYCRUD_MYSQL_PORT: s.POLYCRUD_TEST_MYSQL_PORT,
    POLYCRUD_MYSQL_USER: s.POLYCRUD_TEST_MYSQL_USER,
    POLYCRUD_MYSQL_PASSWORD: s.POLYCRUD_TEST_MYSQL_PASSWORD,
    POLYCRUD_MYSQL_DATABASE: s.POLYCRUD_TEST_MYSQL_DATABASE,
    POLYCRUD_REDIS_PORT: s.POLYCRUD_TEST_REDIS_PORT,
    POLYCRUD_REDIS_USER: s.POLYCRUD_TEST_REDIS_USER,
    POLYCRUD_REDIS_PASSWORD: s.POLYCRUD_TEST_REDIS_PASSWORD,
    POLYCRUD_ADMIN_TOKEN_SHA256: sha256(ADMIN_TOKEN),
    POLYCRUD_READER_TOKEN_SHA256: sha256(READER_TOKEN),
    ...extraEnv,
  };
  for (const [protocol, port] of Object.entries(ports)) env[`POLYCRUD_${protocol.toUpperCase()}_PORT`] = String(port);
  const child = launch(s.POLYCRUD_SERVER_BINARY, [], env, logFile);
  await waitForPorts(child, Object.values(ports), 'polycrud-server', logFile);
  const pidFile = path.join(outputDir('logs'), `${name}-server.pid`);
  fs.writeFileSync(pidFile, `${child.pid}\n`);
  const scheme = env.POLYCRUD_TLS_CERT ? 'https' : 'http';
  return { thriftPort, restPort, ports, pidFile, restBase: restPort ? `${scheme}://127.0.0.1:${restPort}` : null,
    stop: () => stop(child), child, logFile };
}

/**
 * Starts polycrud-web (this checkout's) against thriftPort; extraArgs are
 * passed on, env adds variables. base is https:// when it serves TLS.
 */
async function startWeb(name, thriftPort, extraArgs = [], { env: extraEnv = {} } = {}) {
  const port = await freePort();
  const logFile = path.join(outputDir('logs'), `${name}-web.log`);
  const env = { PATH: process.env.PATH, POLYCRUD_WEB_LOG_LEVEL: 'info', ...extraEnv };
  const child = launch(process.execPath, [path.join(WEB_DIR, 'bin', 'polycrud-web.js'), '--port', String(port),
    '--thrift-port', String(thriftPort), ...extraArgs], env, logFile);
  await waitForPorts(child, [port], 'polycrud-web', logFile);
  const scheme = extraArgs.includes('--tls-cert') || env.POLYCRUD_WEB_TLS_CERT ? 'https' : 'http';
  return { port, base: `${scheme}://127.0.0.1:${port}`, stop: () => stop(child), child, logFile };
}

// Certificate directories made by tls.sh for this test process, removed when it exits.
const tlsDirs = [];
process.on('exit', () => {
  for (const dir of tlsDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * A private CA and its certificates, made by deploy/local/tls.sh in a fresh
 * directory: paths of ca.pem, server.pem/.key (localhost, 127.0.0.1, ::1) and
 * client.pem/.key. Each call makes an independent CA.
 */
function makeTls(name) {
  const script = (process.env.POLYCRUD_TEST_SETTINGS_FILE && settings().POLYCRUD_TLS_SCRIPT)
    || path.resolve(WEB_DIR, '..', 'deploy', 'local', 'tls.sh');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `polycrud-web-${name}-`));
  tlsDirs.push(dir);
  const run = spawnSync(script, [dir], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`${script} ${dir} failed (${run.status}): ${run.stderr}`);
  const file = (f) => path.join(dir, f);
  return {
    dir,
    ca: file('ca.pem'),
    serverCert: file('server.pem'),
    serverKey: file('server.key'),
    clientCert: file('client.pem'),
    clientKey: file('client.key'),
  };
}

/** A run-unique name with the given prefix (valid as a username). */
let counter = 0;
const runId = crypto.randomBytes(3).toString('hex');
const unique = (prefix) => `${prefix}_${runId}_${counter++}`;

module.exports = { ADMIN_TOKEN, READER_TOKEN, settings, outputDir, freePort, startServer, startWeb, stop, unique, makeTls };
