#include "tools/wire/http1_wire.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>

namespace polycrud::wire {
namespace {

bool IEquals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

bool IContains(std::string_view text, std::string_view word) {
  if (word.size() > text.size()) return false;
  for (std::size_t i = 0; i + word.size() <= text.size(); ++i) {
    if (IEquals(text.substr(i, word.size()), word)) return true;
  }
  return false;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// What the head says about the body that follows it.
struct Framing {
  std::optional<std::uint64_t> content_length;
  bool chunked = false;
};

class Http1Reader {
 public:
  Http1Reader(std::string_view bytes, bool request, std::string_view body_section)
      : bytes_(bytes),
        request_(request),
        head_(request ? "HTTP request head" : "HTTP response head"),
        body_(body_section),
        parts_(bytes.size()) {}

  std::vector<Part> Read() && {
    // Every message takes at least its start line.
    for (std::size_t messages = 0; messages < bytes_.size() && parts_.end() < bytes_.size();
         ++messages) {
      if (!ReadMessage()) break;
    }
    return std::move(parts_).Finish();
  }

 private:
  // The end of the line that starts at parts_.end() (where its CRLF starts),
  // or npos when it has none.
  std::size_t LineEnd() const { return bytes_.find("\r\n", parts_.end()); }

  // One message; false when the bytes end before its head does.
  bool ReadMessage() {
    std::size_t at = parts_.end();
    std::size_t eol = LineEnd();
    if (eol == std::string_view::npos) return false;
    const std::string_view start = bytes_.substr(at, eol - at);
    parts_.Add(eol + 2 - at, head_, request_ ? "request line" : "status line", EscapeText(start));
    int status = 0;
    if (!request_) {
      const std::size_t space = start.find(' ');
      if (space != std::string_view::npos && space + 4 <= start.size()) {
        std::from_chars(start.data() + space + 1, start.data() + space + 4, status);
      }
    }
    Framing framing;
    // Every line takes at least its CRLF.
    bool head_complete = false;
    for (std::size_t lines = 0; lines <= bytes_.size(); ++lines) {
      at = parts_.end();
      eol = LineEnd();
      if (eol == std::string_view::npos) break;
      if (eol == at) {
        parts_.Add(2, head_, "end of head", "blank line (CRLF)");
        head_complete = true;
        break;
      }
      AddHeaderLine(bytes_.substr(at, eol - at), framing, head_);
    }
    if (!head_complete) return false;
    if (!request_ && (status / 100 == 1 || status == 204 || status == 304)) return true;
    if (framing.chunked) return ReadChunks();
    if (framing.content_length) {
      const std::uint64_t length = *framing.content_length;
      const std::size_t present =
          static_cast<std::size_t>(std::min<std::uint64_t>(length, bytes_.size() - parts_.end()));
      std::string label = "body (" + std::to_string(length) + " bytes";
      if (present < length) label += ", " + std::to_string(present) + " captured";
      parts_.Add(present, body_, label + ")",
                 EscapeText(bytes_.substr(parts_.end(), present), /*keep_line_breaks=*/true));
      return true;
    }
    if (!request_) {
      // No length: the body runs until the server closes the connection.
      const std::size_t rest = bytes_.size() - parts_.end();
      parts_.Add(rest, body_, "body (until the connection closed)",
                 EscapeText(bytes_.substr(parts_.end()), /*keep_line_breaks=*/true));
    }
    return true;
  }

  void AddHeaderLine(std::string_view line, Framing& framing, const std::string& section) {
    const std::size_t length = line.size() + 2;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      parts_.Add(length, section, "header line", EscapeText(line) + " (no colon)");
      return;
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = Trim(line.substr(colon + 1));
    std::string shown = EscapeText(value);
    if (IEquals(name, "authorization") || IEquals(name, "proxy-authorization")) {
      const std::size_t space = value.find(' ');
      shown =
          (space == std::string_view::npos ? "" : EscapeText(value.substr(0, space)) + " ") + "***";
    } else if (IEquals(name, "content-length")) {
      std::uint64_t n = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec == std::errc() && end == value.data() + value.size()) framing.content_length = n;
    } else if (IEquals(name, "transfer-encoding") && IContains(value, "chunked")) {
      framing.chunked = true;
    }
    parts_.Add(length, section, EscapeText(name), shown);
  }

  // A chunked body: a part per chunk-size line, chunk and CRLF, then the
  // trailer lines and the blank line. False when the bytes end inside it.
  bool ReadChunks() {
    // Every chunk takes at least its size line.
    for (std::size_t chunks = 0; chunks <= bytes_.size(); ++chunks) {
      const std::size_t at = parts_.end();
      const std::size_t eol = LineEnd();
      if (eol == std::string_view::npos) return false;
      const std::string_view line = bytes_.substr(at, eol - at);
      const std::string_view digits = Trim(line.substr(0, line.find(';')));
      std::uint64_t size = 0;
      const auto [end, ec] =
          std::from_chars(digits.data(), digits.data() + digits.size(), size, 16);
      if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty()) {
        parts_.AddUnparsed(bytes_.size(), body_, "not a chunk-size line");
        return false;
      }
      parts_.Add(eol + 2 - at, body_, "chunk size",
                 std::to_string(size) + " bytes" + (size == 0 ? " (last chunk)" : ""));
      if (size == 0) {
        for (std::size_t lines = 0; lines <= bytes_.size(); ++lines) {
          const std::size_t line_at = parts_.end();
          const std::size_t line_end = LineEnd();
          if (line_end == std::string_view::npos) return false;
          if (line_end == line_at) {
            parts_.Add(2, body_, "end of chunks", "blank line (CRLF)");
            return true;
          }
          Framing ignored;
          AddHeaderLine(bytes_.substr(line_at, line_end - line_at), ignored, body_);
        }
        return false;
      }
      const std::size_t present =
          static_cast<std::size_t>(std::min<std::uint64_t>(size, bytes_.size() - parts_.end()));
      parts_.Add(present, body_, "chunk data",
                 EscapeText(bytes_.substr(parts_.end(), present), /*keep_line_breaks=*/true));
      if (present < size) return false;
      if (bytes_.substr(parts_.end(), 2) != "\r\n") return false;
      parts_.Add(2, body_, "end of chunk", "CRLF");
    }
    return false;
  }

  std::string_view bytes_;
  bool request_;
  std::string head_;
  std::string body_;
  PartList parts_;
};

}  // namespace

std::vector<Part> AnnotateHttp1(std::string_view bytes, bool request,
                                std::string_view body_section) {
  return Http1Reader(bytes, request, body_section).Read();
}

}  // namespace polycrud::wire
