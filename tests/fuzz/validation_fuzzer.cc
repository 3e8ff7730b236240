// Fuzz target: the core's validation and UTF-8 check. Besides "no crash",
// it checks each verdict against the rules of API.md written out a second
// way, so a rule the validator gets wrong is found too.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/validation.h"

namespace {

bool IsUsernameByTheContract(std::string_view s) {
  if (s.size() < 3 || s.size() > 32) return false;
  for (const char c : s) {
    const bool allowed =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!allowed) return false;
  }
  return true;
}

void Check(bool holds) {
  if (!holds) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool utf8 = polycrud::IsValidUtf8(text);
  Check(polycrud::ValidateUsername(text).ok() == IsUsernameByTheContract(text));
  // Whatever the email and full-name rules accept is valid UTF-8.
  if (polycrud::ValidateEmail(text).ok()) Check(utf8);
  if (polycrud::ValidateFullName(text).ok()) Check(utf8);
  // Pure ASCII is valid UTF-8; a lone continuation byte never is.
  bool ascii = true;
  for (const char c : text) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) Check(utf8);
  if (size == 1 && (data[0] & 0xC0) == 0x80) Check(!utf8);
  // A draft is valid exactly when its three fields are.
  if (size >= 3) {
    const std::size_t a = data[0] % size, b = data[1] % size;
    const std::size_t lo = a < b ? a : b, hi = a < b ? b : a;
    const polycrud::UserDraft draft{.username = std::string(text.substr(0, lo)),
                                    .email = std::string(text.substr(lo, hi - lo)),
                                    .full_name = std::string(text.substr(hi))};
    Check(polycrud::ValidateDraft(draft).ok() ==
          (polycrud::ValidateUsername(draft.username).ok() &&
           polycrud::ValidateEmail(draft.email).ok() &&
           polycrud::ValidateFullName(draft.full_name).ok()));
  }
  return 0;
}
