#include "tools/wire/wire_parts.h"

#include <algorithm>
#include <utility>

namespace polycrud::wire {

void PartList::Add(std::size_t length, std::string section, std::string label, std::string value) {
  length = std::min(length, size_ - end_);
  if (length == 0) return;
  parts_.push_back(Part{.offset = end_,
                        .length = length,
                        .section = std::move(section),
                        .label = std::move(label),
                        .value = std::move(value)});
  end_ += length;
}

void PartList::AddUnparsed(std::size_t upto, std::string section, std::string why) {
  upto = std::min(upto, size_);
  if (upto <= end_) return;
  Add(upto - end_, std::move(section), std::string(kUnparsedLabel), std::move(why));
}

void PartList::AppendToLast(std::string_view text) {
  if (!parts_.empty()) parts_.back().value += text;
}

void PartList::ConcealLast() {
  if (!parts_.empty()) parts_.back().conceal = true;
}

std::vector<Part> PartList::Finish() && {
  if (end_ < size_) {
    const std::string section =
        parts_.empty() ? std::string(kUnparsedLabel) : parts_.back().section;
    AddUnparsed(size_, section, "not understood");
  }
  return std::move(parts_);
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    out += kDigits[byte >> 4];
    out += kDigits[byte & 0x0F];
  }
  return out;
}

namespace {

// The length of the well-formed UTF-8 sequence of 2-4 bytes at bytes[i], or
// 0 when there is none.
std::size_t Utf8SequenceAt(std::string_view bytes, std::size_t i) {
  const auto lead = static_cast<unsigned char>(bytes[i]);
  std::size_t length = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
  } else {
    return 0;
  }
  if (i + length > bytes.size()) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    if ((static_cast<unsigned char>(bytes[i + k]) & 0xC0) != 0x80) return 0;
  }
  return length;
}

}  // namespace

std::string EscapeText(std::string_view bytes, bool keep_line_breaks) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size());
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    const auto byte = static_cast<unsigned char>(c);
    if (keep_line_breaks && (c == '\r' || c == '\n' || c == '\t' || c == '\\')) {
      out += c;
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (byte >= 0x20 && byte < 0x7F) {
      out += c;
    } else if (const std::size_t n = byte >= 0x80 ? Utf8SequenceAt(bytes, i) : 0; n != 0) {
      out.append(bytes.substr(i, n));
      i += n - 1;
    } else {
      out += "\\x";
      out += kDigits[byte >> 4];
      out += kDigits[byte & 0x0F];
    }
  }
  return out;
}

std::string Quoted(std::string_view text) {
  std::string out = "\"";
  for (const char c : EscapeText(text)) {
    if (c == '"') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

std::string HexNumber(std::uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  do {
    hex.insert(hex.begin(), kDigits[value & 0x0F]);
    value >>= 4;
  } while (value != 0);
  return "0x" + hex;
}

}  // namespace polycrud::wire
