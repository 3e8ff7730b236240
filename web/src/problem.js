// RFC 9457 problem documents and JSON bodies, byte-compatible with the C++
// REST face (adapters/rest/problem.cc): same member order, same statuses,
// WWW-Authenticate on 401 and Retry-After on 429/503.
'use strict';

const http = require('node:http');

const HTTP_STATUS = Object.freeze({
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  RESOURCE_EXHAUSTED: 429,
  UNAVAILABLE: 503,
  INTERNAL: 500,
});

/** Sends a JSON text (already serialised) with the given status. */
function sendJsonText(res, status, text, contentType = 'application/json') {
  res.status(status);
  // setHeader, not res.set: Express would append a charset the C++ face does not send.
  res.setHeader('Content-Type', contentType);
  res.send(Buffer.from(text, 'utf8'));
}

/** Sends a problem+json document. */
function sendProblem(res, status, code, detail, field = '') {
  const body = { type: 'about:blank', title: http.STATUS_CODES[status] || 'Error', status, detail, code };
  if (field) body.field = field;
  sendJsonText(res, status, JSON.stringify(body), 'application/problem+json');
}

/** Seconds for Retry-After: at least 1, rounded up. */
function retryAfterSeconds(ms) {
  return Math.max(1, Math.ceil((Number(ms) || 0) / 1000));
}

/**
 * Sends the problem for a ServiceError. Internal and unavailable errors get a
 * generic text (their detail goes to the log, never to the client).
 */
function sendServiceError(res, err, log) {
  const status = HTTP_STATUS[err.code] || 500;
  switch (err.code) {
    case 'INVALID_ARGUMENT':
      return sendProblem(res, status, err.code, err.message, err.field);
    case 'UNAUTHENTICATED':
      res.set('WWW-Authenticate', 'Bearer');
      return sendProblem(res, status, err.code, err.message);
    case 'PERMISSION_DENIED':
    case 'NOT_FOUND':
    case 'CONFLICT':
      return sendProblem(res, status, err.code, err.message);
    case 'RESOURCE_EXHAUSTED':
    case 'UNAVAILABLE':
      log.warn({ code: err.code, err: err.message }, 'service unavailable');
      res.set('Retry-After', String(retryAfterSeconds(err.retryAfterMs)));
      return sendProblem(res, status, err.code,
                         err.code === 'UNAVAILABLE' ? 'service unavailable, retry later' : 'overloaded, retry later');
    default:
      log.error({ err: err.cause || err }, 'internal error');
      return sendProblem(res, 500, 'INTERNAL', 'internal error');
  }
}

/** A user as JSON text with the contract's member order; int64 members exact. */
function userJson(u) {
  return `{"id":${u.id},"username":${JSON.stringify(u.username)},"email":${JSON.stringify(u.email)},` +
    `"full_name":${JSON.stringify(u.full_name)},"version":${u.version},` +
    `"created_at_ms":${u.created_at_ms},"updated_at_ms":${u.updated_at_ms}}`;
}

function usersJson(users) {
  return `[${users.map(userJson).join(',')}]`;
}

module.exports = { HTTP_STATUS, sendJsonText, sendProblem, sendServiceError, retryAfterSeconds, userJson, usersJson };
