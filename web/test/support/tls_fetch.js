// HTTP(S) requests with TLS settings of their own (a private CA, a client
// certificate), which the global fetch cannot take: tlsFetch() gives a
// fetch-like function for the tests' Session and calls, exchange() the raw
// answer with what the TLS session was.
'use strict';

const http = require('node:http');
const https = require('node:https');

/**
 * One request, no redirects followed, a fresh connection each time. tls:
 * options for tls.connect (ca, cert, key, maxVersion...). Resolves with
 * { status, headers (a Headers), text, protocol (e.g. 'TLSv1.3', null for
 * plain HTTP), authorized }; rejects when no answer comes (a refused
 * handshake, a closed connection).
 */
function exchange(url, { method = 'GET', headers = {}, body, tls = {}, timeoutMs = 10000 } = {}) {
  const secure = new URL(url).protocol === 'https:';
  const mod = secure ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { method, headers, agent: false, ...(secure ? tls : {}) }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('error', reject);
      res.on('end', () => {
        const h = new Headers();
        for (let i = 0; i < res.rawHeaders.length; i += 2) h.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
        resolve({
          status: res.statusCode,
          headers: h,
          text: Buffer.concat(chunks).toString('utf8'),
          protocol: secure ? res.socket.getProtocol() : null,
          authorized: secure ? res.socket.authorized : false,
        });
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** A fetch-like function (method, headers, body; redirect is always manual) with these TLS options. */
function tlsFetch(tls) {
  return async (url, { method = 'GET', headers = {}, body } = {}) => {
    const r = await exchange(url, { method, headers, body, tls });
    return { status: r.status, headers: r.headers, text: async () => r.text, json: async () => JSON.parse(r.text) };
  };
}

module.exports = { exchange, tlsFetch };
