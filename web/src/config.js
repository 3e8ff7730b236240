// Command-line flags and environment variables of polycrud-web. Each flag has
// an environment variable; a flag wins over its variable.
'use strict';

const crypto = require('node:crypto');
const path = require('node:path');
const { parseArgs } = require('node:util');

// name, env variables (first set wins), default, kind, help.
const OPTIONS = [
  ['host', ['POLYCRUD_WEB_HOST'], '127.0.0.1', 'string', 'address to listen on'],
  ['port', ['POLYCRUD_WEB_PORT', 'WEB_PORT', 'PORT'], 3000, 'port', 'HTTP(S) port of the console and the gateway'],
  ['tls-cert', ['POLYCRUD_WEB_TLS_CERT'], null, 'file', 'serve HTTPS (TLS 1.2+) with this certificate (PEM)'],
  ['tls-key', ['POLYCRUD_WEB_TLS_KEY'], null, 'file', 'private key of --tls-cert (PEM)'],
  ['tls-client-ca', ['POLYCRUD_WEB_TLS_CLIENT_CA'], null, 'file', 'mutual TLS: require client certificates signed by this CA'],
  ['thrift-host', ['POLYCRUD_THRIFT_HOST'], '127.0.0.1', 'string', 'host of polycrud-server\'s Thrift face'],
  ['thrift-port', ['POLYCRUD_THRIFT_PORT', 'THRIFT_PORT'], 9090, 'port', 'port of polycrud-server\'s Thrift face'],
  ['thrift-protocol', ['POLYCRUD_THRIFT_PROTOCOL'], 'binary', ['binary', 'compact'], 'Thrift protocol (framed transport)'],
  ['thrift-tls-ca', ['POLYCRUD_THRIFT_TLS_CA'], null, 'file', 'Thrift over TLS, trusting this CA (PEM) for the server'],
  ['thrift-client-cert', ['POLYCRUD_THRIFT_CLIENT_CERT'], null, 'file', 'client certificate (PEM) for Thrift with mutual TLS'],
  ['thrift-client-key', ['POLYCRUD_THRIFT_CLIENT_KEY'], null, 'file', 'private key of --thrift-client-cert (PEM)'],
  ['thrift-pool-size', ['POLYCRUD_WEB_THRIFT_POOL_SIZE'], 4, 'count', 'persistent Thrift connections'],
  ['thrift-max-in-flight', ['POLYCRUD_WEB_THRIFT_MAX_IN_FLIGHT'], 256, 'count', 'calls in flight per connection before 429'],
  ['thrift-timeout-ms', ['POLYCRUD_WEB_THRIFT_TIMEOUT_MS'], 10000, 'count', 'per-call timeout (then 503 and reconnect)'],
  ['thrift-connect-timeout-ms', ['POLYCRUD_WEB_THRIFT_CONNECT_TIMEOUT_MS'], 2000, 'count', 'connect timeout'],
  ['thrift-idle-ms', ['POLYCRUD_WEB_THRIFT_IDLE_MS'], 20000, 'count', 'close connections idle this long (below the server\'s 30 s)'],
  ['max-body-bytes', ['POLYCRUD_WEB_MAX_BODY_BYTES'], 1048576, 'count', 'largest gateway request body (413 beyond)'],
  ['session-ttl-min', ['POLYCRUD_WEB_SESSION_TTL_MIN'], 30, 'count', 'console session lifetime after the last request'],
  ['max-sessions', ['POLYCRUD_WEB_MAX_SESSIONS'], 10000, 'count', 'sessions kept (least recently used evicted)'],
  ['signin-limit', ['POLYCRUD_WEB_SIGNIN_LIMIT'], 10, 'count', 'sign-in attempts per address and window'],
  ['signin-window-s', ['POLYCRUD_WEB_SIGNIN_WINDOW_S'], 300, 'count', 'sign-in rate-limit window'],
  ['secure-cookie', ['POLYCRUD_WEB_SECURE_COOKIE'], false, 'bool', 'mark the session cookie Secure and send HSTS (serve behind TLS)'],
  ['trust-proxy', ['POLYCRUD_WEB_TRUST_PROXY'], 0, 'count', 'reverse-proxy hops to trust for the client address'],
  ['shutdown-grace-ms', ['POLYCRUD_WEB_SHUTDOWN_GRACE_MS'], 10000, 'count', 'on SIGTERM, wait this long for requests in flight'],
  ['grpc-port', ['POLYCRUD_GRPC_PORT', 'GRPC_PORT'], 50051, 'port', 'lab: port of polycrud-server\'s gRPC face'],
  ['soap-port', ['POLYCRUD_SOAP_PORT', 'SOAP_PORT'], 8080, 'port', 'lab: port of polycrud-server\'s SOAP face'],
  ['rest-port', ['POLYCRUD_REST_PORT', 'REST_PORT'], 8081, 'port', 'lab: port of polycrud-server\'s REST face'],
  ['lab-thrift-compact-port', ['POLYCRUD_LAB_THRIFT_COMPACT_PORT'], null, 'port', 'lab: a Thrift face speaking compact (none: the lab offers compact only when --thrift-protocol is compact)'],
  ['lab-bench', ['POLYCRUD_LAB_BENCH'], path.resolve(__dirname, '..', '..', 'build', 'benchmarks', 'load', 'polycrud-bench'), 'file', 'lab: the load generator'],
  ['lab-wire', ['POLYCRUD_LAB_WIRE'], path.resolve(__dirname, '..', '..', 'build', 'tools', 'wire', 'polycrud-wire'), 'file', 'lab: the wire capture tool'],
  ['lab-server-pidfile', ['POLYCRUD_LAB_SERVER_PIDFILE'], null, 'file', 'lab: polycrud-server\'s pid file, to report its CPU time per call'],
  ['lab-min-id', ['POLYCRUD_LAB_MIN_ID'], 1, 'count', 'lab: smallest user id that gets and updates draw'],
  ['lab-max-id', ['POLYCRUD_LAB_MAX_ID'], 1000, 'count', 'lab: largest user id that gets and updates draw (ids that exist: seeded users)'],
  ['log-level', ['POLYCRUD_WEB_LOG_LEVEL'], 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'log level (JSON lines on stdout)'],
];

class UsageError extends Error {}

function help() {
  const lines = [
    'Usage: polycrud-web [OPTIONS]   (node web/bin/polycrud-web.js)',
    '',
    'The polycrud web console and REST gateway: an Express server in front of',
    'polycrud-server\'s Thrift face. Browser console at /, API.md\'s REST routes at',
    '/api/v1/..., /healthz and /readyz. Users sign in with their own bearer token;',
    'the console itself holds none.',
    '',
    'Options (each also read from the environment variable shown):',
  ];
  for (const [name, envs, def, kind, text] of OPTIONS) {
    const arg = kind === 'bool' ? '' : Array.isArray(kind) ? ` ${kind.join('|')}` : kind === 'string' ? ' TEXT'
      : kind === 'file' ? ' FILE' : ' N';
    const head = `  --${name}${arg}`;
    lines.push(head.length >= 35 ? `${head}\n${''.padEnd(36)}${text}` : head.padEnd(36) + text);
    lines.push(''.padEnd(36) + `[${envs.join(', ')}; default ${def === null ? 'none' : def}]`);
  }
  lines.push('  -h, --help'.padEnd(36) + 'this text');
  lines.push('', 'POLYCRUD_WEB_SESSION_SECRET signs session cookies (default: random per start;',
             'sessions live in memory, so a restart signs everyone out anyway).',
             'TLS: files are read once at start; a certificate file may hold its chain, a CA',
             'file several CAs. With --tls-cert the port serves HTTPS only and',
             'the session cookie is Secure (HSTS only with --secure-cookie). With',
             '--thrift-tls-ca the Thrift server\'s certificate must name --thrift-host',
             '(an IP address SAN for an address).',
             'SIGTERM/SIGINT: stop accepting, finish requests in flight, close Thrift, exit 0.');
  return lines.join('\n') + '\n';
}

function convert(name, kind, text) {
  if (kind === 'string' || kind === 'file') {
    if (!text) throw new UsageError(`--${name} must not be empty`);
    return text;
  }
  if (kind === 'bool') {
    if (typeof text === 'boolean') return text;
    if (/^(1|true|yes|on)$/i.test(text)) return true;
    if (/^(0|false|no|off|)$/i.test(text)) return false;
    throw new UsageError(`--${name}: expected 1 or 0, got '${text}'`);
  }
  if (Array.isArray(kind)) {
    if (!kind.includes(text)) throw new UsageError(`--${name} must be one of ${kind.join(', ')}, got '${text}'`);
    return text;
  }
  if (!/^[0-9]+$/.test(String(text))) throw new UsageError(`--${name} must be a whole number, got '${text}'`);
  const n = Number(text);
  if (kind === 'port' && (n < 1 || n > 65535)) throw new UsageError(`--${name} must be a port (1-65535), got ${n}`);
  if (kind === 'count' && n > Number.MAX_SAFE_INTEGER) throw new UsageError(`--${name} is too large`);
  return n;
}

const camel = (name) => name.replace(/-([a-z])/g, (_, c) => c.toUpperCase());

/** Parses argv and env into a config object; { help: true } for --help. Throws UsageError. */
function parseConfig(argv, env = process.env) {
  const spec = { help: { type: 'boolean', short: 'h' } };
  for (const [name, , , kind] of OPTIONS) spec[name] = { type: kind === 'bool' ? 'boolean' : 'string' };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: spec, strict: true, allowPositionals: false });
  } catch (err) {
    throw new UsageError(err.message);
  }
  if (parsed.values.help) return { help: true };
  const config = {};
  for (const [name, envs, def, kind] of OPTIONS) {
    let value = parsed.values[name];
    if (value === undefined) {
      const envName = envs.find((e) => env[e] !== undefined && env[e] !== '');
      value = envName !== undefined ? env[envName] : def;
    }
    config[camel(name)] = value === def ? def : convert(name, kind, value);
  }
  for (const name of ['thrift-pool-size', 'thrift-max-in-flight', 'thrift-timeout-ms', 'thrift-connect-timeout-ms',
    'thrift-idle-ms', 'max-body-bytes', 'session-ttl-min', 'max-sessions', 'signin-limit', 'signin-window-s', 'lab-min-id', 'lab-max-id']) {
    if (config[camel(name)] < 1) throw new UsageError(`--${name} must be at least 1`);
  }
  const together = (a, b) => {
    if (Boolean(config[camel(a)]) !== Boolean(config[camel(b)])) throw new UsageError(`--${a} and --${b} go together`);
  };
  together('tls-cert', 'tls-key');
  together('thrift-client-cert', 'thrift-client-key');
  if (config.tlsClientCa && !config.tlsCert) throw new UsageError('--tls-client-ca needs --tls-cert and --tls-key');
  if (config.thriftClientCert && !config.thriftTlsCa) {
    throw new UsageError('--thrift-client-cert needs --thrift-tls-ca (the client certificate is for Thrift over TLS)');
  }
  // HSTS only when asked for (--secure-cookie: a public name behind TLS): on
  // localhost it would force HTTPS on every local port for a year. Served
  // over HTTPS the session cookie is Secure either way.
  config.hsts = config.secureCookie;
  if (config.tlsCert) config.secureCookie = true;
  if (config.labMaxId < config.labMinId) throw new UsageError('--lab-max-id must not be below --lab-min-id');
  config.sessionTtlMs = config.sessionTtlMin * 60 * 1000;
  config.signinWindowMs = config.signinWindowS * 1000;
  config.sessionSecret = env.POLYCRUD_WEB_SESSION_SECRET || crypto.randomBytes(32).toString('hex');
  return config;
}

module.exports = { parseConfig, help, UsageError };
