// TLS of polycrud-web, both ways: the options of the HTTPS server that
// browsers and API clients reach, and the secure context of the Thrift
// client that reaches polycrud-server. The PEM files are read once, at
// start, and checked there (a key that does not fit its certificate, a file
// without a certificate), so a broken setting stops the start instead of
// failing every connection later.
'use strict';

const fs = require('node:fs');
const tls = require('node:tls');

const MIN_VERSION = 'TLSv1.2';
// A client that opens a connection and never finishes the handshake is
// dropped after this long (Node's default is two minutes).
const HANDSHAKE_TIMEOUT_MS = 10000;

class TlsSetupError extends Error {}

// The file's content; it must hold a PEM block of this kind ('CERTIFICATE'
// or 'PRIVATE KEY', which matches 'EC PRIVATE KEY' and the like too).
function readPem(flag, file, kind) {
  let text;
  try {
    text = fs.readFileSync(file);
  } catch (err) {
    throw new TlsSetupError(`cannot read --${flag} ${file}: ${err.message}`);
  }
  if (!new RegExp(`-----BEGIN ([A-Z0-9]+ )?${kind}-----`).test(text.toString('latin1'))) {
    throw new TlsSetupError(`--${flag} ${file} holds no PEM ${kind.toLowerCase()}`);
  }
  return text;
}

// Builds a secure context from options now, so bad files fail at start.
function check(options, what) {
  try {
    return tls.createSecureContext(options);
  } catch (err) {
    throw new TlsSetupError(`${what}: ${err.message}`);
  }
}

/**
 * The https.createServer() options for config.tlsCert/tlsKey (and
 * tlsClientCa: client certificates required and verified), or null when the
 * console serves plain HTTP. Throws TlsSetupError.
 */
function httpsServerOptions(config) {
  if (!config.tlsCert) return null;
  const options = {
    cert: readPem('tls-cert', config.tlsCert, 'CERTIFICATE'),
    key: readPem('tls-key', config.tlsKey, 'PRIVATE KEY'),
    minVersion: MIN_VERSION,
    handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
  };
  if (config.tlsClientCa) {
    options.ca = readPem('tls-client-ca', config.tlsClientCa, 'CERTIFICATE');
    options.requestCert = true;
    options.rejectUnauthorized = true;
  }
  check(options, `--tls-cert ${config.tlsCert} with --tls-key ${config.tlsKey}`);
  return options;
}

/**
 * The secure context of Thrift over TLS for config.thriftTlsCa (and the
 * client certificate thriftClientCert/thriftClientKey), or null for plain Thrift.
 * Throws TlsSetupError.
 */
function thriftSecureContext(config) {
  if (!config.thriftTlsCa) return null;
  const options = { ca: readPem('thrift-tls-ca', config.thriftTlsCa, 'CERTIFICATE'), minVersion: MIN_VERSION };
  if (config.thriftClientCert) {
    options.cert = readPem('thrift-client-cert', config.thriftClientCert, 'CERTIFICATE');
    options.key = readPem('thrift-client-key', config.thriftClientKey, 'PRIVATE KEY');
  }
  return check(options, config.thriftClientCert
    ? `--thrift-client-cert ${config.thriftClientCert} with --thrift-client-key ${config.thriftClientKey}`
    : `--thrift-tls-ca ${config.thriftTlsCa}`);
}

module.exports = { httpsServerOptions, thriftSecureContext, TlsSetupError };
