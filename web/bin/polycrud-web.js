#!/usr/bin/env node
// polycrud-web: starts the console and REST gateway (see --help).
'use strict';

const http = require('node:http');
const https = require('node:https');
const pino = require('pino');
const { parseConfig, help, UsageError } = require('../src/config');
const { createApp } = require('../src/app');
const { httpsServerOptions, thriftSecureContext } = require('../src/tls');
const { UserClient } = require('../src/user_client');

function main() {
  let config;
  try {
    config = parseConfig(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`polycrud-web: ${err.message}\nRun "polycrud-web --help" for usage.\n`);
    process.exit(2);
  }
  if (config.help) {
    process.stdout.write(help());
    return;
  }
  const logger = pino({ level: config.logLevel, base: { service: 'polycrud-web' } });
  let client;
  let tlsOptions;
  try {
    tlsOptions = httpsServerOptions(config);
    client = new UserClient({
      host: config.thriftHost,
      port: config.thriftPort,
      protocol: config.thriftProtocol,
      size: config.thriftPoolSize,
      maxInFlight: config.thriftMaxInFlight,
      callTimeoutMs: config.thriftTimeoutMs,
      connectTimeoutMs: config.thriftConnectTimeoutMs,
      idleMs: config.thriftIdleMs,
      secureContext: thriftSecureContext(config),
      logger,
    });
  } catch (err) {
    logger.fatal(err.message);
    process.stderr.write(`polycrud-web: ${err.message}\n`);
    process.exit(1);
  }
  const { app, store, lab } = createApp(config, client, logger);
  const server = tlsOptions ? https.createServer(tlsOptions, app) : http.createServer(app);
  server.listen(config.port, config.host);
  server.requestTimeout = 30000;
  server.headersTimeout = 20000;
  server.keepAliveTimeout = 5000;
  server.on('listening', () => {
    logger.info({ host: config.host, port: server.address().port, https: Boolean(tlsOptions),
      client_certificates: Boolean(config.tlsClientCa), thrift: `${config.thriftHost}:${config.thriftPort}`,
      thrift_tls: Boolean(config.thriftTlsCa) }, 'polycrud-web listening');
  });
  // A failed handshake (no or an untrusted client certificate, plain HTTP on
  // the HTTPS port, an old TLS version): the connection is closed.
  server.on('tlsClientError', (err, socket) => {
    logger.debug({ err: err.message.trim(), code: err.code, ip: socket.remoteAddress }, 'TLS handshake failed');
    socket.destroy();
  });
  server.on('error', (err) => {
    logger.fatal({ err: err.message }, 'cannot listen');
    process.stderr.write(`polycrud-web: cannot listen on ${config.host}:${config.port}: ${err.message}\n`);
    process.exit(1);
  });

  let stopping = false;
  // While stopping, answers tell keep-alive clients to go away (before the
  // app writes anything), and connections are closed as soon as they fall
  // idle, so the exit waits for requests in flight only, never for
  // keep-alive timeouts.
  server.prependListener('request', (req, res) => {
    if (stopping) res.setHeader('Connection', 'close');
  });
  const shutdown = (signal) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing requests in flight');
    // A lab comparison stops now (its stream then ends like any request).
    lab.close();
    const force = setTimeout(() => {
      logger.warn('shutdown grace period over; closing remaining connections');
      server.closeAllConnections();
    }, config.shutdownGraceMs);
    force.unref();
    const idle = setInterval(() => server.closeIdleConnections(), 100);
    idle.unref();
    server.close(() => {
      clearInterval(idle);
      client.close();
      store.close();
      logger.info('stopped');
      process.exit(0);
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main();
