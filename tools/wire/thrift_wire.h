// Annotation of framed Thrift (binary or compact protocol): per frame its
// 4-byte length, the message header (version and type, method name,
// sequence id), then every field, recursively. The bytes are read with
// Thrift's own TBinaryProtocol / TCompactProtocol over a TMemoryBuffer; each
// part's extent is how much of the buffer one read consumed. Field names come
// from the generated code of idl/polycrud.thrift: the getUser argument and
// result structs, and the structs they hold, are written once through a
// protocol that records the names they write (the generated code has no
// other reflection). Other methods' fields show ids and types only.
#pragma once

#include <string_view>
#include <vector>

#include "tools/wire/wire_parts.h"

namespace polycrud::wire {

// The parts of one direction of a framed Thrift exchange; `compact` selects
// TCompactProtocol, otherwise TBinaryProtocol. Never throws for bad input:
// what does not decode becomes "unparsed bytes".
std::vector<Part> AnnotateThrift(std::string_view bytes, bool compact);

}  // namespace polycrud::wire
