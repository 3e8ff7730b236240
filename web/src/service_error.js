// The core error codes of API.md as one error type, mapped from the Thrift
// exceptions of idl/polycrud.thrift. Every layer above the Thrift client sees
// only ServiceError.
'use strict';

const CODES = Object.freeze([
  'INVALID_ARGUMENT',
  'UNAUTHENTICATED',
  'PERMISSION_DENIED',
  'NOT_FOUND',
  'CONFLICT',
  'RESOURCE_EXHAUSTED',
  'UNAVAILABLE',
  'INTERNAL',
]);

// The C++ Thrift face has one exception (Unavailable) for two core codes and
// tells them apart by this fixed message (adapters/thrift/thrift_user_handler.cc).
const OVERLOADED_MESSAGE = 'overloaded, retry later';

class ServiceError extends Error {
  /**
   * code: one of CODES. field: the offending input field (INVALID_ARGUMENT).
   * retryAfterMs: when to retry (RESOURCE_EXHAUSTED, UNAVAILABLE).
   * cause: the internal error behind an INTERNAL/UNAVAILABLE one, for logs only.
   * outcomeUnknown: the call may have reached the service and run, but no
   * answer came (timed out, or the connection was lost with the call in
   * flight): a write may or may not have been done.
   */
  constructor(code, message, { field = '', retryAfterMs = 0, cause, outcomeUnknown = false } = {}) {
    super(message);
    this.name = 'ServiceError';
    this.code = code;
    this.field = field;
    this.retryAfterMs = retryAfterMs;
    this.outcomeUnknown = outcomeUnknown;
    if (cause) this.cause = cause;
  }
}

/** Maps whatever a generated Thrift client call rejected with to a ServiceError. */
function fromThriftError(err, ttypes) {
  if (err instanceof ServiceError) return err;
  const message = (err && typeof err.message === 'string' && err.message) || '';
  if (err instanceof ttypes.InvalidArgument) {
    return new ServiceError('INVALID_ARGUMENT', message, { field: err.field || '' });
  }
  if (err instanceof ttypes.Unauthenticated) return new ServiceError('UNAUTHENTICATED', message);
  if (err instanceof ttypes.PermissionDenied) return new ServiceError('PERMISSION_DENIED', message);
  if (err instanceof ttypes.NotFound) return new ServiceError('NOT_FOUND', message);
  if (err instanceof ttypes.Conflict) return new ServiceError('CONFLICT', message);
  if (err instanceof ttypes.Unavailable) {
    const retryAfterMs = Number(require('./int64').fromThrift(err.retry_after_ms));
    const code = message === OVERLOADED_MESSAGE ? 'RESOURCE_EXHAUSTED' : 'UNAVAILABLE';
    return new ServiceError(code, message, { retryAfterMs });
  }
  // TApplicationException and anything unexpected: internal, text kept for logs.
  return new ServiceError('INTERNAL', 'internal error', { cause: err });
}

module.exports = { CODES, ServiceError, fromThriftError, OVERLOADED_MESSAGE };
