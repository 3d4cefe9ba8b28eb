// Text helpers for the JSONata engine (see text_internal.h).

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "jsonata/text_internal.h"

namespace engage::jsonata {
namespace internal {

std::vector<uint32_t> DecodeUtf8(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    uint32_t cp = 0;
    size_t len = DecodeUtf8At(s, i, &cp);
    if (len == 0) {
      out.push_back(static_cast<unsigned char>(s[i]));
      ++i;
    } else {
      out.push_back(cp);
      i += len;
    }
  }
  return out;
}

std::string EncodeUtf8(const std::vector<uint32_t>& cps, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end && i < cps.size(); ++i) AppendUtf8(out, cps[i]);
  return out;
}

size_t CodePointCount(std::string_view s) {
  size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

std::string JsNumberToString(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  if (d == 0) return "0";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  bool neg = false;
  size_t p = 0;
  if (sci[0] == '-') {
    neg = true;
    p = 1;
  }
  size_t epos = sci.find('e');
  std::string digits;
  for (size_t i = p; i < epos; ++i) {
    if (sci[i] != '.') digits += sci[i];
  }
  int exp10 = std::atoi(sci.c_str() + epos + 1);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  int k = static_cast<int>(digits.size());
  int n = exp10 + 1;
  std::string out = neg ? "-" : "";
  if (k <= n && n <= 21) {
    out += digits + std::string(n - k, '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, n) + "." + digits.substr(n);
  } else if (-6 < n && n <= 0) {
    out += "0." + std::string(-n, '0') + digits;
  } else {
    out += digits.substr(0, 1);
    if (k > 1) out += "." + digits.substr(1);
    out += "e";
    out += (n - 1 >= 0) ? "+" : "-";
    out += std::to_string(std::abs(n - 1));
  }
  return out;
}

std::string FormatNumberForString(double d) {
  // integers print exactly (jsonata keeps e.g. 5890840712243076 intact)
  if (!std::isfinite(d) || d == 0 || d == std::floor(d)) return JsNumberToString(d);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.14e", d);
  return JsNumberToString(std::strtod(buf, nullptr));
}

std::string TranslateRegex(std::string_view pattern) {
  // std::regex's ECMAScript grammar is close to JavaScript's. Translate the few escapes that
  // differ: \u{...} is not supported and \uXXXX must become the literal character.
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      char e = pattern[i + 1];
      if (e == 'u' && i + 5 < pattern.size() + 0 && i + 6 <= pattern.size()) {
        std::string hex(pattern.substr(i + 2, 4));
        char* end = nullptr;
        long v = std::strtol(hex.c_str(), &end, 16);
        if (end == hex.c_str() + 4 && v >= 0x80) {
          AppendUtf8(out, static_cast<uint32_t>(v));
          i += 5;
          continue;
        }
      }
      out += c;
      out += e;
      ++i;
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace internal

bool RegexCountsFit(std::string_view pattern) {
  // Any count std::regex can use fits in 9 digits (its NFA is capped at 100000 states anyway).
  constexpr size_t kMaxDigits = 9;
  auto digits_at = [&](size_t i) {
    size_t n = 0;
    while (i + n < pattern.size() && pattern[i + n] >= '0' && pattern[i + n] <= '9') ++n;
    return n;
  };
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\') {
      if (digits_at(i + 1) > kMaxDigits) return false;
      ++i;  // skip the escaped character: `\{` is a literal brace, `\\` a literal backslash
    } else if (pattern[i] == '{') {
      size_t n = digits_at(i + 1);
      if (n > kMaxDigits) return false;
      size_t comma = i + 1 + n;
      if (comma < pattern.size() && pattern[comma] == ',' && digits_at(comma + 1) > kMaxDigits) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace engage::jsonata
