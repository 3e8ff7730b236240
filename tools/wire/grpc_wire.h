// Annotation of gRPC over cleartext HTTP/2: the connection preface, then
// every frame as its 9-byte header and its payload. SETTINGS show one part
// per setting, WINDOW_UPDATE its increment, PING its opaque data,
// RST_STREAM and GOAWAY their error codes; HEADERS, CONTINUATION and
// PUSH_PROMISE blocks are decoded with nghttp2's HPACK inflater (one per
// direction, as HPACK state is); DATA is split into gRPC's 5-byte message
// prefix and the protobuf message, annotated field by field with the
// descriptors of the generated code (polycrud::grpc_proto): the method comes
// from the request's :path, the message type from its input (request) or
// output (response). Authorization values show as "Bearer ***".
#pragma once

#include <string_view>
#include <vector>

#include "tools/wire/wire_parts.h"

namespace polycrud::wire {

struct Http2Annotation {
  std::vector<Part> request;
  std::vector<Part> response;
};

// The parts of both directions of one HTTP/2 connection (the response needs
// the paths the request named).
Http2Annotation AnnotateGrpc(std::string_view request, std::string_view response);

}  // namespace polycrud::wire
