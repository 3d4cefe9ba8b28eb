#include "engage/core/json.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

namespace engage {

namespace {

// True when any of the 8 bytes in `x` is zero (the classic SWAR test).
constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighs = 0x8080808080808080ULL;
inline bool HasZeroByte(uint64_t x) { return ((x - kOnes) & ~x & kHighs) != 0; }

// True when one of the 8 bytes needs attention: a control character, '"', '\\' or a byte of a
// multi-byte UTF-8 sequence.
inline bool NeedsAttention(uint64_t x) {
  return (x & kHighs) != 0 || ((x - 0x20 * kOnes) & ~x & kHighs) != 0 ||
         HasZeroByte(x ^ ('"' * kOnes)) || HasZeroByte(x ^ ('\\' * kOnes));
}

// The length of the well-formed UTF-8 sequence starting at s[i] (a byte >= 0x80), or 0 when it is
// not well formed (overlong, surrogate, above U+10FFFF, truncated): the sequences nlohmann's
// decoder accepts.
size_t Utf8Length(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  auto cont = [&](size_t k) { return k < s.size() && (byte(k) & 0xC0) == 0x80; };
  unsigned char c = byte(i);
  if (c >= 0xC2 && c <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(i + 1) || !cont(i + 2)) return 0;
    unsigned char c1 = byte(i + 1);
    if (c == 0xE0 && c1 < 0xA0) return 0;  // overlong
    if (c == 0xED && c1 > 0x9F) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    unsigned char c1 = byte(i + 1);
    if (c == 0xF0 && c1 < 0x90) return 0;  // overlong
    if (c == 0xF4 && c1 > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

// Appends `s` as a JSON string literal, escaped as nlohmann's dump escapes it. Returns false
// (having appended part of it) when `s` is not well-formed UTF-8.
template <typename Out>
bool AppendString(Out* out, std::string_view s) {
  out->push_back('"');
  const char* data = s.data();
  size_t n = s.size();
  size_t run = 0;  // start of the bytes not appended yet
  size_t i = 0;
  while (i < n) {
    if (i + 8 <= n) {
      uint64_t x;
      std::memcpy(&x, data + i, 8);
      if (!NeedsAttention(x)) {
        i += 8;
        continue;
      }
    }
    auto c = static_cast<unsigned char>(data[i]);
    if (c >= 0x80) {
      size_t len = Utf8Length(s, i);
      if (len == 0) return false;
      i += len;
      continue;
    }
    if (c >= 0x20 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    out->append(data + run, i - run);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default: {
        static constexpr char kHex[] = "0123456789abcdef";
        char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out->append(u, 6);
      }
    }
    ++i;
    run = i;
  }
  out->append(data + run, n - run);
  out->push_back('"');
  return true;
}

template <typename Out>
void AppendStringOrReplace(Out* out, const std::string& s) {
  size_t mark = out->size();
  if (AppendString(out, s)) return;
  // Not well-formed UTF-8: nlohmann's replacement rules decide what is kept.
  out->resize(mark);
  std::string replaced = Json(s).dump(-1, ' ', false, Json::error_handler_t::replace);
  out->append(replaced.data(), replaced.size());
}

template <typename Out, typename T>
void AppendInteger(Out* out, T v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, static_cast<size_t>(end - buf));
}

// Counts the bytes a serialization would write, for sizes without building the text.
class ByteCounter {
 public:
  void push_back(char) { ++n_; }
  void append(const char*, size_t n) { n_ += n; }
  void append(const char* s) { n_ += std::strlen(s); }
  size_t size() const { return n_; }
  void resize(size_t n) { n_ = n; }

 private:
  size_t n_ = 0;
};

template <typename Out>
void AppendCompact(Out* out, const Json& j) {
  switch (j.type()) {
    case Json::value_t::null:
      out->append("null");
      return;
    case Json::value_t::boolean:
      out->append(j.get_ref<const Json::boolean_t&>() ? "true" : "false");
      return;
    case Json::value_t::number_integer:
      AppendInteger(out, j.get_ref<const Json::number_integer_t&>());
      return;
    case Json::value_t::number_unsigned:
      AppendInteger(out, j.get_ref<const Json::number_unsigned_t&>());
      return;
    case Json::value_t::number_float: {
      double d = j.get_ref<const Json::number_float_t&>();
      if (!std::isfinite(d)) {
        out->append("null");
        return;
      }
      // The shortest round-tripping form, formatted as nlohmann's dump formats it.
      char buf[64];
      char* end = nlohmann::detail::to_chars(buf, buf + sizeof buf, d);
      out->append(buf, static_cast<size_t>(end - buf));
      return;
    }
    case Json::value_t::string:
      AppendStringOrReplace(out, j.get_ref<const Json::string_t&>());
      return;
    case Json::value_t::array: {
      out->push_back('[');
      bool first = true;
      for (const Json& v : j) {
        if (!first) out->push_back(',');
        first = false;
        AppendCompact(out, v);
      }
      out->push_back(']');
      return;
    }
    case Json::value_t::object: {
      out->push_back('{');
      bool first = true;
      for (const auto& [key, v] : j.get_ref<const Json::object_t&>()) {
        if (!first) out->push_back(',');
        first = false;
        AppendStringOrReplace(out, key);
        out->push_back(':');
        AppendCompact(out, v);
      }
      out->push_back('}');
      return;
    }
    default: {  // binary, discarded: rare; nlohmann knows their forms
      std::string text = j.dump(-1, ' ', false, Json::error_handler_t::replace);
      out->append(text.data(), text.size());
      return;
    }
  }
}

}  // namespace

int JsonTextDepth(std::string_view text, int stop_above) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > stop_above) return deepest;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

int JsonDepth(const Json& j, int stop_above) {
  // Depth-first over an explicit stack of (value, depth).
  std::vector<std::pair<const Json*, int>> stack{{&j, 0}};
  int deepest = 0;
  while (!stack.empty()) {
    auto [v, d] = stack.back();
    stack.pop_back();
    if (!v->is_structured()) continue;
    deepest = std::max(deepest, d + 1);
    if (deepest > stop_above) return deepest;
    for (const auto& child : *v) {
      if (child.is_structured()) stack.emplace_back(&child, d + 1);
    }
  }
  return deepest;
}

Result<Json> ParseJson(std::string_view text, std::string_view what, int max_depth) {
  std::string prefix = what.empty() ? "" : fmt::format("{}: ", what);
  if (JsonTextDepth(text, max_depth) > max_depth) {
    return InvalidArgumentError(
        fmt::format("{}JSON nested deeper than {} levels", prefix, max_depth));
  }
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." without the tag.
    std::string detail = e.what();
    size_t bracket = detail.find("] ");
    if (detail.rfind("[json.exception", 0) == 0 && bracket != std::string::npos) {
      detail = detail.substr(bracket + 2);
    }
    return InvalidArgumentError(fmt::format("{}not valid JSON: {}", prefix, detail));
  }
}

std::string DumpJson(const Json& j, int indent) {
  if (indent >= 0) return j.dump(indent, ' ', false, Json::error_handler_t::replace);
  std::string out;
  AppendCompact(&out, j);
  return out;
}

void AppendJson(std::string* out, const Json& j) { AppendCompact(out, j); }

size_t CompactJsonSize(const Json& j) {
  ByteCounter counter;
  AppendCompact(&counter, j);
  return counter.size();
}

Json StatusToJson(const Status& s) {
  Json e;
  e["code"] = std::string(CodeName(s.code()));
  e["message"] = s.message();
  return Json{{"error", e}};
}

}  // namespace engage
