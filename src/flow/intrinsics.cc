#include "engage/flow/intrinsics.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <cmath>
#include <random>
#include <vector>

#include "flow/util_internal.h"

namespace engage::flow {

struct Intrinsic::Call {
  enum class ArgKind { kLiteral, kPath, kCall };
  struct Arg {
    ArgKind kind = ArgKind::kLiteral;
    Json literal;
    std::shared_ptr<JsonPath> path;
    std::shared_ptr<Call> call;
  };
  std::string name;  // without "States."
  std::vector<Arg> args;
};

namespace {

using Call = Intrinsic::Call;
using ArgKind = Call::ArgKind;

struct Arity {
  const char* name;
  int min_args;
  int max_args;  // -1: unbounded
};

constexpr Arity kFunctions[] = {
    {"Format", 1, -1},     {"StringToJson", 1, 1},   {"JsonToString", 1, 1},
    {"Array", 0, -1},      {"ArrayPartition", 2, 2}, {"ArrayContains", 2, 2},
    {"ArrayRange", 3, 3},  {"ArrayGetItem", 2, 2},   {"ArrayLength", 1, 1},
    {"ArrayUnique", 1, 1}, {"Base64Encode", 1, 1},   {"Base64Decode", 1, 1},
    {"Hash", 2, 2},        {"JsonMerge", 3, 3},      {"MathRandom", 2, 3},
    {"MathAdd", 2, 2},     {"StringSplit", 2, 2},    {"UUID", 0, 0},
};

class CallParser {
 public:
  explicit CallParser(std::string_view s) : s_(s) {}

  Result<std::shared_ptr<Call>> ParseCall() {
    SkipSpace();
    if (s_.substr(pos_, 7) != "States.") return Error("expected 'States.'");
    pos_ += 7;
    size_t begin = pos_;
    while (pos_ < s_.size() && std::isalnum(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    auto call = std::make_shared<Call>();
    call->name = std::string(s_.substr(begin, pos_ - begin));
    const Arity* arity = nullptr;
    for (const Arity& a : kFunctions) {
      if (call->name == a.name) arity = &a;
    }
    if (arity == nullptr) {
      return InvalidArgumentError(
          fmt::format("unknown intrinsic function 'States.{}' in '{}'", call->name, s_));
    }
    SkipSpace();
    if (Peek() != '(') return Error("expected '('");
    ++pos_;
    SkipSpace();
    if (Peek() != ')') {
      while (true) {
        ENGAGE_ASSIGN_OR_RETURN(Call::Arg arg, ParseArg());
        call->args.push_back(std::move(arg));
        SkipSpace();
        if (Peek() == ',') {
          ++pos_;
          continue;
        }
        break;
      }
    }
    SkipSpace();
    if (Peek() != ')') return Error("expected ',' or ')'");
    ++pos_;
    int n = static_cast<int>(call->args.size());
    if (n < arity->min_args || (arity->max_args >= 0 && n > arity->max_args)) {
      std::string expected = arity->max_args < 0 ? fmt::format("at least {}", arity->min_args)
                             : arity->min_args == arity->max_args
                                 ? std::to_string(arity->min_args)
                                 : fmt::format("{} to {}", arity->min_args, arity->max_args);
      return InvalidArgumentError(fmt::format("States.{} takes {} argument(s), got {} in '{}'",
                                              call->name, expected, n, s_));
    }
    return call;
  }

  Status ExpectEnd() {
    SkipSpace();
    if (pos_ != s_.size()) return Error("unexpected text after the call");
    return Status::Ok();
  }

 private:
  Status Error(std::string_view what) const {
    return InvalidArgumentError(
        fmt::format("invalid intrinsic function '{}': {} at character {}", s_, what, pos_ + 1));
  }
  char Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n')) ++pos_;
  }

  Result<Call::Arg> ParseArg() {
    SkipSpace();
    Call::Arg arg;
    char c = Peek();
    if (c == '\'') {
      ++pos_;
      std::string out;
      while (pos_ < s_.size() && s_[pos_] != '\'') {
        if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) {
          char e = s_[pos_ + 1];
          // Escapes keep placeholders literal for Format; a backslash before anything else
          // stays as written (AWS passes "\n" through as the two characters).
          if (e == '\'' || e == '\\') {
            out += e;
          } else if (e == '{' || e == '}') {
            out += '\\';
            out += e;
          } else {
            out += '\\';
            out += e;
          }
          pos_ += 2;
          continue;
        }
        out += s_[pos_++];
      }
      if (Peek() != '\'') return Error("unterminated string");
      ++pos_;
      arg.literal = std::move(out);
      return arg;
    }
    if (c == '$') {
      size_t begin = pos_;
      int depth = 0;
      char quote = 0;
      while (pos_ < s_.size()) {
        char ch = s_[pos_];
        if (quote) {
          // A backslash escapes the next character inside a bracketed name (Jayway JsonPath,
          // which AWS uses: $['a\'b'] names a'b), so an escaped quote does not close it.
          if (ch == '\\' && pos_ + 1 < s_.size()) {
            pos_ += 2;
            continue;
          }
          if (ch == quote) quote = 0;
        } else if (ch == '\'' || ch == '"') {
          quote = ch;
        } else if (ch == '[' || ch == '(') {
          ++depth;
        } else if (ch == ']' || (ch == ')' && depth > 0)) {
          --depth;
        } else if ((ch == ',' || ch == ')') && depth == 0) {
          break;
        }
        ++pos_;
      }
      std::string_view text = s_.substr(begin, pos_ - begin);
      while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
      ENGAGE_ASSIGN_OR_RETURN(JsonPath p, JsonPath::Parse(text));
      arg.kind = ArgKind::kPath;
      arg.path = std::make_shared<JsonPath>(std::move(p));
      return arg;
    }
    if (s_.substr(pos_, 7) == "States.") {
      // A nested call recurses; deeper nesting would only exhaust the stack.
      if (depth_ >= kMaxNesting) return Error("function calls nested too deeply");
      ++depth_;
      auto call = ParseCall();
      --depth_;
      ENGAGE_ASSIGN_OR_RETURN(arg.call, std::move(call));
      arg.kind = ArgKind::kCall;
      return arg;
    }
    size_t begin = pos_;
    while (pos_ < s_.size() && s_[pos_] != ',' && s_[pos_] != ')' && s_[pos_] != ' ') ++pos_;
    std::string word(s_.substr(begin, pos_ - begin));
    Json v = Json::parse(word, nullptr, false);
    if (v.is_discarded() || v.is_object() || v.is_array() || v.is_string() || word.empty()) {
      pos_ = begin;
      return Error("expected a string, number, boolean, null, path or function call");
    }
    arg.literal = std::move(v);
    return arg;
  }

  static constexpr int kMaxNesting = 100;

  std::string_view s_;
  size_t pos_ = 0;
  int depth_ = 0;
};

Status ArgError(const Call& call, std::string_view what) {
  return InvalidArgumentError(fmt::format("States.{}: {}", call.name, what));
}

// Removes the backslash escapes of `{` and `}` a string literal kept for States.Format.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == '{' || s[i + 1] == '}')) continue;
    out += s[i];
  }
  return out;
}

Result<int64_t> IntArg(const Call& call, const Json& v, std::string_view what) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18) {
      return static_cast<int64_t>(d);
    }
  }
  return ArgError(call, fmt::format("{} must be an integer, got {}", what, DumpJson(v)));
}

// A number rounded to the nearest integer, halves up (Java's Math.round, which AWS uses for the
// operands of States.MathAdd and States.MathRandom). Beyond +/-9e18 (where no double has a
// fraction and int64 ends) it is an error.
Result<int64_t> RoundedIntArg(const Call& call, const Json& v, std::string_view what) {
  if (v.is_number_integer() && !v.is_number_unsigned()) return v.get<int64_t>();
  if (v.is_number()) {
    double d = v.get<double>();
    if (std::isfinite(d) && std::fabs(d) <= 9e18) return static_cast<int64_t>(std::floor(d + 0.5));
  }
  return ArgError(call,
                  fmt::format("{} must be a number from -9e18 to 9e18, got {}", what, DumpJson(v)));
}

const std::string* StringArg(const Json& v) {
  return v.is_string() ? &v.get_ref<const std::string&>() : nullptr;
}

std::string Base64Encode(std::string_view in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t n = uint8_t(in[i]) << 16;
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

bool Base64Decode(std::string_view in, std::string* out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (in.size() % 4 != 0) return false;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '=') {
      if (i + 2 < in.size() || (i + 1 < in.size() && in[i + 1] != '=')) return false;
      break;
    }
    int v = value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return true;
}

Result<std::string> HashHex(std::string_view data, std::string_view algorithm) {
  const EVP_MD* md = algorithm == "MD5"       ? EVP_md5()
                     : algorithm == "SHA-1"   ? EVP_sha1()
                     : algorithm == "SHA-256" ? EVP_sha256()
                     : algorithm == "SHA-384" ? EVP_sha384()
                     : algorithm == "SHA-512" ? EVP_sha512()
                                              : nullptr;
  if (md == nullptr) {
    return InvalidArgumentError(fmt::format(
        "States.Hash: unsupported algorithm '{}' (use MD5, SHA-1, SHA-256, SHA-384 or SHA-512)",
        algorithm));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, md, nullptr) != 1) {
    return InternalError("States.Hash: digest failed");
  }
  std::string out;
  for (unsigned int i = 0; i < len; ++i) out += fmt::format("{:02x}", digest[i]);
  return out;
}

Result<Json> Apply(const Call& call, std::vector<Json> a) {
  const std::string& f = call.name;
  if (f == "Format") {
    const std::string* tmpl = StringArg(a[0]);
    if (tmpl == nullptr) return ArgError(call, "the template must be a string");
    std::string out;
    size_t next = 1;
    for (size_t i = 0; i < tmpl->size(); ++i) {
      char c = (*tmpl)[i];
      if (c == '\\' && i + 1 < tmpl->size() && ((*tmpl)[i + 1] == '{' || (*tmpl)[i + 1] == '}')) {
        out += (*tmpl)[++i];
      } else if (c == '{' && i + 1 < tmpl->size() && (*tmpl)[i + 1] == '}') {
        if (next >= a.size()) {
          return ArgError(call, "the template has more {} placeholders than arguments");
        }
        out += FormatIntrinsicArg(a[next++]);
        ++i;
      } else {
        out += c;
      }
    }
    if (next != a.size()) {
      return ArgError(call, "the template has fewer {} placeholders than arguments");
    }
    return Json(std::move(out));
  }
  if (f == "StringToJson") {
    const std::string* s = StringArg(a[0]);
    if (s == nullptr) return ArgError(call, "the argument must be a string");
    if (s->find_first_not_of(" \t\r\n") == std::string::npos) return Json();  // AWS: null
    // A deeper document would overflow the stack when copied or serialized later on.
    if (JsonTextDepth(*s) > kMaxJsonDepth) {
      return Status(StatusCode::kOutOfRange,
                    fmt::format("States.{}: the JSON text is nested deeper than {} levels",
                                call.name, kMaxJsonDepth));
    }
    Json v = Json::parse(*s, nullptr, false);
    if (v.is_discarded()) return ArgError(call, fmt::format("'{}' is not valid JSON", *s));
    return v;
  }
  if (f == "JsonToString") return Json(DumpJson(a[0]));
  if (f == "Array") return Json(std::move(a));
  if (f == "ArrayPartition") {
    if (!a[0].is_array()) return ArgError(call, "the first argument must be an array");
    ENGAGE_ASSIGN_OR_RETURN(int64_t size, IntArg(call, a[1], "the chunk size"));
    if (size <= 0) return ArgError(call, "the chunk size must be positive");
    Json out = Json::array();
    for (size_t i = 0; i < a[0].size(); i += static_cast<size_t>(size)) {
      Json chunk = Json::array();
      for (size_t j = i; j < a[0].size() && j < i + static_cast<size_t>(size); ++j) {
        chunk.push_back(a[0][j]);
      }
      out.push_back(std::move(chunk));
    }
    return out;
  }
  if (f == "ArrayContains") {
    if (!a[0].is_array()) return ArgError(call, "the first argument must be an array");
    for (const Json& v : a[0]) {
      if (JsonEqual(v, a[1])) return Json(true);
    }
    return Json(false);
  }
  if (f == "ArrayRange") {
    ENGAGE_ASSIGN_OR_RETURN(int64_t first, IntArg(call, a[0], "the start"));
    ENGAGE_ASSIGN_OR_RETURN(int64_t last, IntArg(call, a[1], "the end"));
    ENGAGE_ASSIGN_OR_RETURN(int64_t step, IntArg(call, a[2], "the step"));
    if (step == 0) return ArgError(call, "the step must not be 0");
    Json out = Json::array();
    for (int64_t v = first; step > 0 ? v <= last : v >= last;) {
      if (out.size() >= 1000) return ArgError(call, "the range has more than 1000 items");
      out.push_back(v);
      // A next value beyond the int64 range is also beyond `last`: the range ends here.
      if (__builtin_add_overflow(v, step, &v)) break;
    }
    return out;
  }
  if (f == "ArrayGetItem") {
    if (!a[0].is_array()) return ArgError(call, "the first argument must be an array");
    ENGAGE_ASSIGN_OR_RETURN(int64_t idx, IntArg(call, a[1], "the index"));
    if (idx < 0 || idx >= static_cast<int64_t>(a[0].size())) {
      return ArgError(call, fmt::format("index {} is out of bounds", idx));
    }
    return a[0][static_cast<size_t>(idx)];
  }
  if (f == "ArrayLength") {
    if (!a[0].is_array()) return ArgError(call, "the argument must be an array");
    return Json(a[0].size());
  }
  if (f == "ArrayUnique") {
    if (!a[0].is_array()) return ArgError(call, "the argument must be an array");
    Json out = Json::array();
    for (const Json& v : a[0]) {
      bool seen = false;
      for (const Json& u : out) seen = seen || JsonEqual(u, v);
      if (!seen) out.push_back(v);
    }
    return out;
  }
  if (f == "Base64Encode") {
    const std::string* s = StringArg(a[0]);
    if (s == nullptr) return ArgError(call, "the argument must be a string");
    if (s->size() > 10000) return ArgError(call, "the input is longer than 10000 characters");
    return Json(Base64Encode(*s));
  }
  if (f == "Base64Decode") {
    const std::string* s = StringArg(a[0]);
    if (s == nullptr) return ArgError(call, "the argument must be a string");
    if (s->size() > 10000) return ArgError(call, "the input is longer than 10000 characters");
    std::string out;
    if (!Base64Decode(*s, &out)) return ArgError(call, "the argument is not valid base64");
    return Json(std::move(out));
  }
  if (f == "Hash") {
    if (a[0].is_null()) return ArgError(call, "the data must not be null");
    const std::string* algo = StringArg(a[1]);
    if (algo == nullptr) return ArgError(call, "the algorithm must be a string");
    std::string data = a[0].is_string() ? a[0].get<std::string>() : DumpJson(a[0]);
    if (data.size() > 10000) return ArgError(call, "the input is longer than 10000 characters");
    ENGAGE_ASSIGN_OR_RETURN(std::string hex, HashHex(data, *algo));
    return Json(std::move(hex));
  }
  if (f == "JsonMerge") {
    if (!a[0].is_object() || !a[1].is_object()) {
      return ArgError(call, "the first two arguments must be objects");
    }
    if (!a[2].is_boolean()) return ArgError(call, "the third argument must be a boolean");
    if (a[2].get<bool>()) return ArgError(call, "deep merge (true) is not supported by AWS");
    Json out = a[0];
    for (auto it = a[1].begin(); it != a[1].end(); ++it) out[it.key()] = it.value();
    return out;
  }
  if (f == "MathRandom") {
    // AWS (Step Functions developer guide, "Intrinsics for Math operations"): a random number
    // from the start (inclusive) to the end (exclusive); "If you specify a non-integer value for
    // the start number or end number argument, Step Functions will round it off to the nearest
    // integer" -- halves up, as the recorded States.MathAdd cases show AWS rounding (Java's
    // Math.round: 2.5 -> 3, -2.5 -> -2). The seed is rounded the same way (AWS documents no
    // rule for it; refusing 1.5 would fail machines AWS runs).
    ENGAGE_ASSIGN_OR_RETURN(int64_t lo, RoundedIntArg(call, a[0], "the start"));
    ENGAGE_ASSIGN_OR_RETURN(int64_t hi, RoundedIntArg(call, a[1], "the end"));
    if (hi <= lo) {
      return ArgError(call, fmt::format("the end ({}) must be above the start ({}): the end is "
                                        "exclusive",
                                        hi, lo));
    }
    std::mt19937_64 rng;
    if (a.size() == 3) {
      ENGAGE_ASSIGN_OR_RETURN(int64_t seed, RoundedIntArg(call, a[2], "the seed"));
      rng.seed(static_cast<uint64_t>(seed));
    } else {
      rng.seed(std::random_device{}());
    }
    std::uniform_int_distribution<int64_t> dist(lo, hi - 1);
    return Json(dist(rng));
  }
  if (f == "MathAdd") {
    // AWS rounds each operand half up (Java's Math.round) before adding.
    int64_t sum = 0;
    for (int k = 0; k < 2; ++k) {
      if (!a[k].is_number()) {
        return ArgError(call, fmt::format("the arguments must be numbers, got {}", DumpJson(a[k])));
      }
      double d = a[k].get<double>();
      if (!std::isfinite(d) || std::fabs(d) > 9e18) {
        return ArgError(call, fmt::format("{} is out of range", DumpJson(a[k])));
      }
      int64_t operand = a[k].is_number_integer() ? a[k].get<int64_t>()
                                                 : static_cast<int64_t>(std::floor(d + 0.5));
      if (__builtin_add_overflow(sum, operand, &sum)) {
        return ArgError(call, "the sum is out of range");
      }
    }
    return Json(sum);
  }
  if (f == "StringSplit") {
    const std::string* s = StringArg(a[0]);
    const std::string* delims = StringArg(a[1]);
    if (s == nullptr || delims == nullptr) return ArgError(call, "both arguments must be strings");
    Json out = Json::array();
    std::string cur;
    for (char c : *s) {
      if (delims->find(c) != std::string::npos) {
        if (!cur.empty()) out.push_back(cur);
        cur.clear();
      } else {
        cur += c;
      }
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
  }
  if (f == "UUID") return Json(NewUuidV4());
  return ArgError(call, "unknown function");
}

Result<Json> EvaluateCall(const Call& call, const PathResolver& resolve, int64_t max_result_bytes) {
  std::vector<Json> args;
  args.reserve(call.args.size());
  for (const Call::Arg& arg : call.args) {
    switch (arg.kind) {
      case ArgKind::kLiteral:
        args.push_back(arg.literal);
        break;
      case ArgKind::kPath: {
        ENGAGE_ASSIGN_OR_RETURN(Json v, resolve(*arg.path));
        args.push_back(std::move(v));
        break;
      }
      case ArgKind::kCall: {
        ENGAGE_ASSIGN_OR_RETURN(Json v, EvaluateCall(*arg.call, resolve, max_result_bytes));
        args.push_back(std::move(v));
        break;
      }
    }
  }
  // Only Format keeps \{ \} escapes; every other function sees plain strings.
  if (call.name != "Format") {
    for (size_t i = 0; i < args.size(); ++i) {
      if (call.args[i].kind == ArgKind::kLiteral && args[i].is_string()) {
        args[i] = Unescape(args[i].get<std::string>());
      }
    }
  } else {
    for (size_t i = 1; i < args.size(); ++i) {
      if (call.args[i].kind == ArgKind::kLiteral && args[i].is_string()) {
        args[i] = Unescape(args[i].get<std::string>());
      }
    }
  }
  ENGAGE_ASSIGN_OR_RETURN(Json out, Apply(call, std::move(args)));
  // Nested calls multiply their arguments (States.Array($, $) of States.Array($, $) ...): each
  // call's result stays within the payload limit, so none builds on an oversized one.
  if (max_result_bytes > 0 && static_cast<int64_t>(CompactJsonSize(out)) > max_result_bytes) {
    return ResourceExhaustedError(
        fmt::format("States.{}: the result is larger than {} bytes", call.name, max_result_bytes));
  }
  return out;
}

}  // namespace

bool Intrinsic::Looks(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && text[i] == ' ') ++i;
  return text.substr(i, 7) == "States." && text.find('(') != std::string_view::npos;
}

Result<Intrinsic> Intrinsic::Parse(std::string_view text) {
  CallParser parser(text);
  Intrinsic out;
  out.text_ = std::string(text);
  ENGAGE_ASSIGN_OR_RETURN(std::shared_ptr<Call> call, parser.ParseCall());
  ENGAGE_RETURN_IF_ERROR(parser.ExpectEnd());
  out.call_ = std::move(call);
  return out;
}

Result<Json> Intrinsic::Evaluate(const PathResolver& resolve, int64_t max_result_bytes) const {
  return EvaluateCall(*call_, resolve, max_result_bytes);
}

std::string FormatIntrinsicArg(const Json& v) {
  switch (v.type()) {
    case Json::value_t::string:
      return v.get<std::string>();
    case Json::value_t::object: {
      std::string out = "{";
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += ", ";
        first = false;
        out += it.key() + "=" + FormatIntrinsicArg(it.value());
      }
      return out + "}";
    }
    case Json::value_t::array: {
      std::string out = "[";
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) out += ", ";
        out += FormatIntrinsicArg(v[i]);
      }
      return out + "]";
    }
    default:
      return DumpJson(v);
  }
}

}  // namespace engage::flow
