#include "services/common/text.h"

#include <cstdint>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace leadflow::common {
namespace {

// Decodes the UTF-8 sequence at s[i]; returns its length (0 if malformed) and the code point.
size_t DecodeUtf8(absl::string_view s, size_t i, uint32_t* cp) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t n;
  uint32_t v, min;
  if ((c & 0xe0) == 0xc0) {
    n = 2, v = c & 0x1f, min = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3, v = c & 0x0f, min = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4, v = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xc0) != 0x80) return 0;
    v = (v << 6) | (b(k) & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;  // overlong, surrogate
  *cp = v;
  return n;
}

bool Refused(uint32_t cp, TextKind kind) {
  if (cp < 0x20) return !(kind == TextKind::kNote && (cp == '\n' || cp == '\r' || cp == '\t'));
  if (cp == 0x7f) return true;
  if (cp >= 0x80 && cp <= 0x9f) return true;      // C1
  if (cp == 0x2028 || cp == 0x2029) return true;  // line / paragraph separator
  if (cp >= 0x202a && cp <= 0x202e) return true;  // bidi embeddings, overrides
  if (cp >= 0x2066 && cp <= 0x2069) return true;  // bidi isolates
  return false;
}

const char* What(uint32_t cp) {
  if (cp >= 0x202a && cp <= 0x202e) return "a bidirectional override";
  if (cp >= 0x2066 && cp <= 0x2069) return "a bidirectional isolate";
  if (cp == 0x2028 || cp == 0x2029) return "a line separator";
  return "a control character";
}

}  // namespace

absl::Status CheckText(absl::string_view field, absl::string_view value, TextKind kind) {
  for (size_t i = 0; i < value.size();) {
    uint32_t cp = 0;
    const size_t n = DecodeUtf8(value, i, &cp);
    if (n == 0) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": not valid UTF-8 (at byte ", i, ")"));
    }
    if (Refused(cp, kind)) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": contains ", What(cp), " (", absl::StrFormat("U+%04X", cp), ") at byte ", i,
          kind == TextKind::kNote ? "; notes take line breaks and tabs, no other control characters"
                                  : "; this field is a single line without control characters"));
    }
    i += n;
  }
  return absl::OkStatus();
}

std::string QuotePrefix(absl::string_view value, size_t max_chars) {
  size_t end = 0, chars = 0;
  while (end < value.size() && chars < max_chars) {
    uint32_t cp = 0;
    const size_t n = DecodeUtf8(value, end, &cp);
    end += n == 0 ? 1 : n;
    ++chars;
  }
  return absl::StrCat("'", absl::CHexEscape(value.substr(0, end)), "'",
                      end < value.size() ? "..." : "");
}

}  // namespace leadflow::common
