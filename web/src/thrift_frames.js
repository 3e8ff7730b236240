// Reading a framed Thrift connection's replies. The thrift package's own
// reader copies every received byte through a JavaScript array (push, then
// splice per frame) and, after each frame's message, tries to read another
// and ends with a thrown underrun error; together they were the largest cost
// of a gateway call after the socket writes (see docs/benchmarking.md, The
// gateway). This one slices frames out of the received buffers and decodes
// exactly one message per frame with the generated client's recv_ method, as
// the package does.
'use strict';

const thrift = require('thrift');

// Largest reply frame accepted; a larger length prefix means a corrupt or
// foreign stream, and the connection is dropped.
const MAX_FRAME_BYTES = 64 * 1024 * 1024;

class FrameError extends Error {}

/**
 * Returns a 'data' listener that calls onFrame(frame) for every complete
 * frame (a Buffer without its 4-byte length), in order. Throws FrameError on
 * a length below 0 or above maxFrameBytes.
 */
function frameReader(onFrame, maxFrameBytes = MAX_FRAME_BYTES) {
  let chunks = [];
  let held = 0; // bytes in chunks
  let need = 4; // bytes needed before the next look
  return (data) => {
    chunks.push(data);
    held += data.length;
    if (held < need) return;
    let buf = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, held);
    let pos = 0;
    need = 4;
    while (buf.length - pos >= 4) {
      const size = buf.readInt32BE(pos);
      if (size < 0 || size > maxFrameBytes) throw new FrameError(`bad Thrift frame length ${size}`);
      if (buf.length - pos - 4 < size) {
        need = 4 + size;
        break;
      }
      onFrame(buf.subarray(pos + 4, pos + 4 + size));
      pos += 4 + size;
    }
    if (pos === buf.length) {
      chunks = [];
      held = 0;
    } else {
      buf = buf.subarray(pos);
      chunks = [buf];
      held = buf.length;
    }
  };
}

/**
 * Decodes the one reply message in `frame` with `Protocol` and hands it to
 * the client's recv_<method>, which calls the callback the call left under
 * its sequence id. Throws on a reply to a method the client does not have.
 */
function dispatchReply(client, Protocol, frame) {
  const message = new Protocol(new thrift.TFramedTransport(frame));
  const header = message.readMessageBegin();
  const recv = client[`recv_${header.fname}`];
  if (typeof recv !== 'function') {
    throw new thrift.TApplicationException(thrift.TApplicationExceptionType.WRONG_METHOD_NAME,
      'Received a response to an unknown RPC function');
  }
  // The generated recv_ takes its callback from _reqs under the id it is
  // given; the package passes the negated id through a wrapper, which only
  // matters with its multiplexed protocol, which the pool does not use.
  recv.call(client, message, header.mtype, header.rseqid);
}

module.exports = { frameReader, dispatchReply, FrameError, MAX_FRAME_BYTES };
