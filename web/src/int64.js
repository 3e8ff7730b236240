// 64-bit integers between JSON/HTTP text, BigInt and Thrift's node-int64.
// Ids and versions travel as BigInt inside the web tier, so every int64 the
// C++ service accepts or returns round-trips exactly.
'use strict';

const Int64 = require('node-int64');

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Parses a whole decimal int64 (optional leading '-'), as the C++ REST face does; null if not one. */
function parseInt64(text) {
  if (typeof text !== 'string' || !/^-?[0-9]+$/.test(text)) return null;
  const value = BigInt(text);
  return value < INT64_MIN || value > INT64_MAX ? null : value;
}

/** A BigInt (or safe integer Number) as the node-int64 the Thrift client writes. */
function toThrift(value) {
  const buffer = Buffer.alloc(8);
  buffer.writeBigInt64BE(BigInt(value));
  return new Int64(buffer);
}

/** A node-int64 (or Number) read by the Thrift client as a BigInt. */
function fromThrift(value) {
  if (value === null || value === undefined) return 0n;
  if (typeof value === 'number') return BigInt(value);
  return value.buffer.readBigInt64BE(value.offset || 0);
}

module.exports = { INT64_MIN, INT64_MAX, parseInt64, toThrift, fromThrift };
