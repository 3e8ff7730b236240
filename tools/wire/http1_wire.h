// Annotation of HTTP/1.1 messages (the SOAP and REST faces, and the web
// gateway): the start line, each header line and the blank line under
// "HTTP request head" / "HTTP response head", then the body as one part
// (Content-Length), one part per chunk-size line and chunk (chunked), or
// the rest of the bytes (a response delimited by the connection's close).
// Authorization values show as "<scheme> ***".
#pragma once

#include <string_view>
#include <vector>

#include "tools/wire/wire_parts.h"

namespace polycrud::wire {

// The parts of one direction: requests when `request`, else responses; the
// body goes under `body_section` ("SOAP envelope", "JSON body").
std::vector<Part> AnnotateHttp1(std::string_view bytes, bool request,
                                std::string_view body_section);

}  // namespace polycrud::wire
