// The Express application: security headers, structured request logs,
// sessions, static assets, the REST gateway under /api and the console.
'use strict';

const crypto = require('node:crypto');
const path = require('node:path');
const express = require('express');
const helmet = require('helmet');
const session = require('express-session');
const { BoundedSessionStore } = require('./session_store');
const { createGateway } = require('./gateway');
const { createConsole } = require('./console');
const { LabRunner } = require('./lab');
const { createLabApi } = require('./lab_routes');

const SESSION_COOKIE = 'polycrud.sid';

/**
 * The protocol lab's runner for this configuration: the server's faces on
 * the Thrift host, the gateway on this process's own port.
 */
function createLab(config, logger) {
  const compact = config.thriftProtocol === 'compact';
  return new LabRunner({
    benchPath: config.labBench,
    wirePath: config.labWire,
    host: config.thriftHost,
    webHost: config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host,
    ports: {
      thrift: compact ? null : config.thriftPort,
      'thrift-compact': compact ? config.thriftPort : config.labThriftCompactPort,
      grpc: config.grpcPort,
      soap: config.soapPort,
      rest: config.restPort,
      web: config.port,
    },
    separateCompact: !compact,
    tls: config.thriftTlsCa ? { ca: config.thriftTlsCa, cert: config.thriftClientCert, key: config.thriftClientKey } : null,
    serverPidFile: config.labServerPidfile,
    minId: config.labMinId,
    maxId: config.labMaxId,
    logger,
  });
}

/**
 * Builds the app. config: see config.js. client: a UserClient. logger: pino.
 * Returns { app, store, lab } (the store and the lab are closed on shutdown).
 */
function createApp(config, client, logger) {
  const app = express();
  app.disable('x-powered-by');
  // ETags are the user's version (gateway) or absent; no body-hash ETags.
  app.set('etag', false);
  app.set('trust proxy', config.trustProxy);
  app.set('session cookie name', SESSION_COOKIE);

  // One JSON log line per request: id, method, path, status, duration; also
  // for a request the client gave up on before the answer (aborted: true).
  // The path only: query strings and bodies are never logged.
  // The request's child logger is made on first use (most requests log
  // only their one line, and not at all above level info).
  const logRequests = logger.isLevelEnabled('info');
  app.use((req, res, next) => {
    const id = crypto.randomUUID();
    let log = null;
    Object.defineProperty(req, 'log', {
      get() {
        if (log === null) log = logger.child({ req_id: id });
        return log;
      },
    });
    res.setHeader('X-Request-Id', id);
    if (logRequests) {
      const started = process.hrtime.bigint();
      res.once('close', () => {
        const line = {
          method: req.method,
          path: req.originalUrl.split('?')[0],
          status: res.statusCode,
          ms: Number((process.hrtime.bigint() - started) / 1000n) / 1000,
          bytes: Number(res.get('content-length')) || 0,
          ip: req.ip,
        };
        if (!res.writableFinished) line.aborted = true;
        req.log.info(line, 'request');
      });
    }
    next();
  });

  // The gateway authenticates every call with its bearer token: no cookies,
  // hence no session and no CSRF token there.
  // The gateway answers JSON to programs, not pages to browsers: of the
  // console's security headers it needs only these, set at once (helmet's
  // dozen headers per answer cost the gateway a measurable share of a call).
  const apiHeaders = [
    ['X-Content-Type-Options', 'nosniff'],
    ['Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'"],
    ['X-Frame-Options', 'DENY'],
    ['Referrer-Policy', 'same-origin'],
  ];
  if (config.hsts ?? config.secureCookie) {
    apiHeaders.push(['Strict-Transport-Security', 'max-age=31536000; includeSubDomains']);
  }
  app.use('/api', (req, res, next) => {
    for (const [name, value] of apiHeaders) res.setHeader(name, value);
    next();
  });
  const lab = createLab(config, logger);
  app.use('/api/v1/lab', createLabApi(lab, client));
  app.use('/api', createGateway(client, { prefix: '/api', maxBodyBytes: config.maxBodyBytes }));

  app.use(helmet({
    contentSecurityPolicy: {
      useDefaults: true,
      directives: {
        // The console has no script and loads only its stylesheet and icon.
        'default-src': ["'none'"],
        'script-src': ["'none'"],
        'style-src': ["'self'"],
        'img-src': ["'self'"],
        'font-src': ["'self'"],
        'form-action': ["'self'"],
        'frame-ancestors': ["'none'"],
        // Plain-HTTP loopback by default: only upgrade when served over TLS.
        'upgrade-insecure-requests': config.secureCookie ? [] : null,
      },
    },
    strictTransportSecurity: config.hsts ?? config.secureCookie,
    // The same as frame-ancestors 'none', for browsers without CSP level 2.
    xFrameOptions: { action: 'deny' },
    referrerPolicy: { policy: 'same-origin' },
  }));

  app.get('/healthz', (req, res) => res.type('text').send('ok\n'));
  app.get('/readyz', async (req, res) => {
    try {
      const server = await client.ping();
      res.json({ ready: true, server, thrift: client.stats() });
    } catch (err) {
      res.status(503).json({ ready: false, error: 'polycrud service unreachable', thrift: client.stats() });
    }
  });

  app.use('/assets', express.static(path.resolve(__dirname, '..', 'public'), { index: false, maxAge: '1h' }));
  // The lab page's chart library (npm uplot), served from here: no CDN.
  app.use('/assets/vendor/uplot', express.static(path.dirname(require.resolve('uplot/dist/uPlot.min.css')),
    { index: false, maxAge: '1h' }));
  app.use('/assets', (req, res) => res.status(404).type('text').send('no such asset\n'));

  const store = new BoundedSessionStore({ maxSessions: config.maxSessions, ttlMs: config.sessionTtlMs });
  app.use(session({
    name: SESSION_COOKIE,
    secret: config.sessionSecret,
    store,
    resave: false,
    saveUninitialized: false,
    rolling: true,
    cookie: { httpOnly: true, sameSite: 'strict', secure: config.secureCookie, maxAge: config.sessionTtlMs, path: '/' },
  }));
  // Signed-in pages must not be cached or kept in the back/forward cache.
  app.use((req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  app.use(createConsole(client, { signinLimit: config.signinLimit, signinWindowMs: config.signinWindowMs, lab }));
  // Last resort: Express's own handler would show error text (file paths) to clients.
  app.use((err, req, res, next) => {
    const status = err && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status === 500) req.log.error({ err }, 'unexpected error');
    if (res.headersSent) return next(err);
    return res.status(status).type('text').send(status === 500 ? 'internal error\n' : 'bad request\n');
  });
  return { app, store, lab };
}

module.exports = { createApp, SESSION_COOKIE };
