#include "core/validation.h"

#include <string>

namespace polycrud {
namespace {

// Decodes one UTF-8 sequence at s[i]; returns its length, or 0 if malformed,
// and stores the code point.
std::size_t DecodeUtf8(std::string_view s, std::size_t i, char32_t& cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  std::size_t len = 0;
  char32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    cp = b0 & 0x1F;
    min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    cp = b0 & 0x0F;
    min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    cp = b0 & 0x07;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

// C0, DEL and C1 controls, plus the Unicode line/paragraph separators.
bool IsControl(char32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029;
}

// Unicode space separators (general category Zs), not only ASCII space and
// U+00A0: U+2003 EM SPACE in an address is as much a space as ' '.
bool IsSpace(char32_t cp) {
  return cp == 0x20 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  char32_t cp = 0;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t len = DecodeUtf8(s, i, cp);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

Status ValidateId(std::int64_t id, std::string_view field) {
  if (id <= 0) return Status::InvalidArgument("id must be a positive integer", std::string(field));
  return Status::Ok();
}

Status ValidateUsername(std::string_view username) {
  if (username.size() < 3 || username.size() > 32) {
    return Status::InvalidArgument("username must be 3-32 characters", "username");
  }
  for (const char c : username) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!ok) {
      return Status::InvalidArgument("username may contain only a-z, 0-9, '_', '.' and '-'",
                                     "username");
    }
  }
  return Status::Ok();
}

namespace {

// What an e-mail and a search prefix (the start of one) share: 1-254 bytes
// of valid UTF-8 without spaces or control characters. Errors name `field`.
Status ValidateEmailText(std::string_view text, const std::string& field) {
  if (text.empty() || text.size() > kMaxEmailBytes) {
    return Status::InvalidArgument(field + " must be 1-254 bytes", field);
  }
  if (!IsValidUtf8(text)) return Status::InvalidArgument(field + " is not valid UTF-8", field);
  char32_t cp = 0;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t len = DecodeUtf8(text, i, cp);
    if (IsControl(cp) || IsSpace(cp)) {
      return Status::InvalidArgument(field + " may not contain spaces or control characters",
                                     field);
    }
    i += len;
  }
  return Status::Ok();
}

}  // namespace

Status ValidateEmail(std::string_view email) {
  if (Status s = ValidateEmailText(email, "email"); !s.ok()) return s;
  const std::size_t at = email.find('@');
  if (at == std::string_view::npos || email.find('@', at + 1) != std::string_view::npos) {
    return Status::InvalidArgument("email must contain exactly one '@'", "email");
  }
  if (at == 0 || at + 1 == email.size()) {
    return Status::InvalidArgument("email needs a local part and a domain", "email");
  }
  return Status::Ok();
}

Status ValidateFullName(std::string_view full_name) {
  if (!IsValidUtf8(full_name)) {
    return Status::InvalidArgument("full_name is not valid UTF-8", "full_name");
  }
  std::size_t code_points = 0;
  char32_t cp = 0;
  for (std::size_t i = 0; i < full_name.size();) {
    const std::size_t len = DecodeUtf8(full_name, i, cp);
    if (IsControl(cp)) {
      return Status::InvalidArgument("full_name may not contain control characters", "full_name");
    }
    ++code_points;
    i += len;
  }
  if (code_points < 1 || code_points > 128) {
    return Status::InvalidArgument("full_name must be 1-128 characters", "full_name");
  }
  return Status::Ok();
}

Status ValidateDraft(const UserDraft& draft) {
  if (Status s = ValidateUsername(draft.username); !s.ok()) return s;
  if (Status s = ValidateEmail(draft.email); !s.ok()) return s;
  return ValidateFullName(draft.full_name);
}

Status ValidatePatch(const UserPatch& patch) {
  if (!patch.email && !patch.full_name) {
    return Status::InvalidArgument("the update sets no field (email or full_name)", "patch");
  }
  if (patch.email) {
    if (Status s = ValidateEmail(*patch.email); !s.ok()) return s;
  }
  if (patch.full_name) {
    if (Status s = ValidateFullName(*patch.full_name); !s.ok()) return s;
  }
  if (patch.expected_version < 0) {
    return Status::InvalidArgument("expected_version must be >= 0", "expected_version");
  }
  return Status::Ok();
}

Status ValidateBatchIds(std::span<const std::int64_t> ids) {
  if (ids.empty() || ids.size() > kMaxBatchIds) {
    return Status::InvalidArgument("ids must hold 1-1000 ids", "ids");
  }
  for (const std::int64_t id : ids) {
    if (id <= 0) return Status::InvalidArgument("every id must be a positive integer", "ids");
  }
  return Status::Ok();
}

Status ValidateSearchArgs(std::string_view prefix, std::int32_t limit) {
  if (Status s = ValidateEmailText(prefix, "prefix"); !s.ok()) return s;
  const std::size_t at = prefix.find('@');
  if (at != std::string_view::npos && prefix.find('@', at + 1) != std::string_view::npos) {
    return Status::InvalidArgument("prefix may contain at most one '@'", "prefix");
  }
  if (limit < 0 || limit > kMaxSearchLimit) {
    return Status::InvalidArgument("limit must be 1-100", "limit");
  }
  return Status::Ok();
}

Status ValidateListArgs(std::int64_t after_id, std::int32_t limit) {
  if (after_id < 0) return Status::InvalidArgument("after_id must be >= 0", "after_id");
  if (limit < 0 || limit > kMaxPageLimit) {
    return Status::InvalidArgument("limit must be 1-1000", "limit");
  }
  return Status::Ok();
}

}  // namespace polycrud
