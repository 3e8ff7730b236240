// The annotated bytes of one direction of a captured exchange: parts that
// cover every byte exactly once, in byte order, each with the heading it
// belongs under (section), what the bytes are (label) and what they say
// (value). Every annotator of polycrud-wire (Thrift, HTTP/2 + gRPC,
// HTTP/1.1) fills a PartList; bytes it cannot read become "unparsed bytes".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace polycrud::wire {

// The label of bytes no annotator understood.
inline constexpr std::string_view kUnparsedLabel = "unparsed bytes";

struct Part {
  std::size_t offset = 0;
  std::size_t length = 0;
  std::string section;
  std::string label;
  std::string value;
  // The bytes are to be shown as '*': they hold a secret in an encoding the
  // masking of the captured bytes cannot see (an HPACK Huffman string).
  bool conceal = false;
};

// Parts appended in byte order: each Add covers the next `length` bytes, so
// no gap or overlap can arise. Zero-length parts are dropped.
class PartList {
 public:
  explicit PartList(std::size_t size) : size_(size) {}

  // Appends the next `length` bytes (clamped to what is left).
  void Add(std::size_t length, std::string section, std::string label, std::string value);
  // Appends the bytes from end() up to `upto` as "unparsed bytes" (nothing
  // when end() >= upto).
  void AddUnparsed(std::size_t upto, std::string section, std::string why = "");
  // Appends `text` to the value of the last part (a decoded detail that took
  // no bytes of its own, such as a compact Thrift bool).
  void AppendToLast(std::string_view text);
  // Marks the last part's bytes as a secret to show as '*'.
  void ConcealLast();

  // The offset of the next byte to annotate.
  std::size_t end() const { return end_; }
  std::size_t size() const { return size_; }
  // The parts, with whatever is left after end() as "unparsed bytes".
  std::vector<Part> Finish() &&;
  const std::vector<Part>& parts() const { return parts_; }

 private:
  std::size_t size_;
  std::size_t end_ = 0;
  std::vector<Part> parts_;
};

// `bytes` as lower-case hex, two digits per byte.
std::string Hex(std::string_view bytes);

// `bytes` as text for a value: printable ASCII and UTF-8 as they are, \r \n
// \t and \\ as escapes, anything else as \xNN. With `keep_line_breaks` (a
// body, shown as the text it is) \r \n \t and \\ stay as they are.
std::string EscapeText(std::string_view bytes, bool keep_line_breaks = false);

// `text` in double quotes, escaped as EscapeText does.
std::string Quoted(std::string_view text);

// `value` in hex with a 0x prefix, e.g. "0x1f".
std::string HexNumber(std::uint64_t value);

}  // namespace polycrud::wire
