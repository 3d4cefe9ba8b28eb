// JSONata's built-in function library (and the AWS Step Functions additions), plus the
// JSON.stringify-compatible serialisation used by $string and string concatenation.

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "jsonata/evaluator_internal.h"
#include "jsonata/picture.h"
#include "jsonata/text_internal.h"

namespace engage::jsonata::internal {

// ---------------------------------------------------------------- stringify

namespace {

void AppendJsonString(std::string& out, const std::string& s) {
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else if (c == 0xED && i + 2 < s.size() &&
                   (static_cast<unsigned char>(s[i + 1]) & 0xE0) == 0xA0) {
          // a lone surrogate (encoded as 3 bytes): JSON.stringify escapes it
          uint32_t cp = ((c & 0x0F) << 12) | ((static_cast<unsigned char>(s[i + 1]) & 0x3F) << 6) |
                        (static_cast<unsigned char>(s[i + 2]) & 0x3F);
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
          out += buf;
          i += 3;
          continue;
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
}

void StringifyInto(std::string& out, const Value& v, bool pretty, int indent) {
  // A value built from shared parts can be far bigger written out than held in memory.
  CheckStringBytes(out.size());
  ChargeWork(1);
  auto newline = [&](int level) {
    if (!pretty) return;
    out += '\n';
    out.append(static_cast<size_t>(level) * 2, ' ');
  };
  switch (v.type()) {
    case VType::kUndefined:
    case VType::kNull:
      out += "null";
      return;
    case VType::kBool:
      out += v.boolean() ? "true" : "false";
      return;
    case VType::kNumber:
      if (!std::isfinite(v.num())) Throw("D1001", "Number out of range");
      out += FormatNumberForString(v.num());
      return;
    case VType::kString:
      AppendJsonString(out, v.str());
      return;
    case VType::kFunction:
      out += "\"\"";
      return;
    case VType::kArray: {
      auto& items = v.arr().items();
      if (items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += ',';
        newline(indent + 1);
        StringifyInto(out, items[i], pretty, indent + 1);
      }
      newline(indent);
      out += ']';
      return;
    }
    case VType::kObject: {
      bool first = true;
      out += '{';
      for (const auto& [k, item] : v.obj().entries()) {
        if (item.undefined()) continue;
        if (!first) out += ',';
        first = false;
        newline(indent + 1);
        AppendJsonString(out, k);
        out += pretty ? ": " : ":";
        StringifyInto(out, item, pretty, indent + 1);
      }
      if (!first) newline(indent);
      out += '}';
      return;
    }
  }
}

}  // namespace

std::string Stringify(const Value& v, bool pretty) {
  std::string out;
  StringifyInto(out, v, pretty, 0);
  return out;
}

std::string ToStringValue(const Value& v) {
  if (v.is_string()) return v.str();
  if (v.is_function()) return "";
  if (v.is_number() && !std::isfinite(v.num())) {
    Throw("D3001", "Attempting to invoke string function on Infinity or NaN");
  }
  if (v.is_array() && v.arr().outer_wrapper && !v.arr().empty()) {
    return Stringify(v.arr()[0], false);
  }
  return Stringify(v, false);
}

namespace {

using Args = std::vector<Value>;

const Value& Arg(const Args& a, size_t i) {
  static const Value kUndefined;
  return i < a.size() ? a[i] : kUndefined;
}

Value Str(std::string s) { return Value::String(std::move(s)); }
Value Num(double d) { return Value::Number(d); }

template <typename T>
T Unwrap(Outcome<T> o) {
  if (!o.ok()) Throw(o.error().code, o.error().message, o.error().position, o.error().token);
  return std::move(o).value();
}

// ---------------------------------------------------------------- aggregation

Value FnSum(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  double s = 0;
  for (const auto& v : a[0].arr().items()) s += v.num();
  return Num(s);
}

Value FnCount(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Num(0);
  return Num(static_cast<double>(a[0].arr().size()));
}

Value FnMax(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined() || a[0].arr().empty()) return Value();
  double m = -INFINITY;
  for (const auto& v : a[0].arr().items()) m = std::max(m, v.num());
  return Num(m);
}

Value FnMin(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined() || a[0].arr().empty()) return Value();
  double m = INFINITY;
  for (const auto& v : a[0].arr().items()) m = std::min(m, v.num());
  return Num(m);
}

Value FnAverage(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined() || a[0].arr().empty()) return Value();
  double s = 0;
  for (const auto& v : a[0].arr().items()) s += v.num();
  return Num(s / static_cast<double>(a[0].arr().size()));
}

// ---------------------------------------------------------------- strings

Value FnString(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  bool pretty = Arg(a, 1).is_bool() && Arg(a, 1).boolean();
  const Value& v = a[0];
  if (v.is_string()) return v;
  if (v.is_function()) return Str("");
  if (v.is_number() && !std::isfinite(v.num())) {
    Throw("D3001", "Attempting to invoke string function on Infinity or NaN");
  }
  if (v.is_array() && v.arr().outer_wrapper && !v.arr().empty()) {
    return Str(Stringify(v.arr()[0], pretty));
  }
  return Str(Stringify(v, pretty));
}

// JavaScript's slice(start, end) over code points.
std::string SliceCodePoints(const std::vector<uint32_t>& cps, double start, double end) {
  double len = static_cast<double>(cps.size());
  auto clamp = [&](double x) {
    if (std::isnan(x)) return 0.0;
    x = std::trunc(x);
    if (x < 0) return std::max(len + x, 0.0);
    return std::min(x, len);
  };
  double s = clamp(start), e = clamp(end);
  if (s >= e) return "";
  return EncodeUtf8(cps, static_cast<size_t>(s), static_cast<size_t>(e));
}

Value FnSubstring(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  auto cps = DecodeUtf8(a[0].str());
  double len = static_cast<double>(cps.size());
  double start = a[1].num();
  if (len + start < 0) start = 0;
  if (Arg(a, 2).defined()) {
    double length = a[2].num();
    if (length <= 0) return Str("");
    double end = start >= 0 ? start + length : len + start + length;
    return Str(SliceCodePoints(cps, start, end));
  }
  return Str(SliceCodePoints(cps, start, len));
}

Value FnSubstringBefore(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  if (a[1].undefined()) return a[0];
  size_t p = a[0].str().find(a[1].str());
  if (p == std::string::npos) return a[0];
  return Str(a[0].str().substr(0, p));
}

Value FnSubstringAfter(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  if (a[1].undefined()) return a[0];
  size_t p = a[0].str().find(a[1].str());
  if (p == std::string::npos) return a[0];
  return Str(a[0].str().substr(p + a[1].str().size()));
}

uint32_t UpperCp(uint32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if ((c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 32;
  if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;
  if (c >= 0x430 && c <= 0x44F) return c - 32;
  if (c >= 0x450 && c <= 0x45F) return c - 80;
  if (c >= 0x100 && c <= 0x17F && (c & 1)) return c - 1;
  return c;
}
uint32_t LowerCp(uint32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if ((c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  if (c >= 0x100 && c <= 0x17F && !(c & 1)) return c + 1;
  return c;
}

Value FnUppercase(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  auto cps = DecodeUtf8(a[0].str());
  for (auto& c : cps) c = UpperCp(c);
  return Str(EncodeUtf8(cps, 0, cps.size()));
}

Value FnLowercase(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  auto cps = DecodeUtf8(a[0].str());
  for (auto& c : cps) c = LowerCp(c);
  return Str(EncodeUtf8(cps, 0, cps.size()));
}

Value FnLength(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  return Num(static_cast<double>(CodePointCount(a[0].str())));
}

Value FnTrim(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  std::string out;
  bool in_ws = false;
  for (char c : a[0].str()) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (!in_ws) out += ' ';
      in_ws = true;
    } else {
      out += c;
      in_ws = false;
    }
  }
  if (!out.empty() && out.front() == ' ') out.erase(0, 1);
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return Str(out);
}

Value FnPad(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  std::string ch = Arg(a, 2).is_string() ? a[2].str() : "";
  if (ch.empty()) ch = " ";
  double width = std::trunc(a[1].num());
  double pad_len = std::fabs(width) - static_cast<double>(CodePointCount(a[0].str()));
  if (pad_len <= 0) return a[0];
  // Also rejects NaN and Infinity, which do not convert to size_t.
  if (!(pad_len <= static_cast<double>(kMaxStringBytes))) CheckStringBytes(kMaxStringBytes + 1);
  size_t n = static_cast<size_t>(pad_len);
  ChargeWork(n / kStringBytesPerUnit);
  // `ch` repeated, cut to n code points.
  const std::vector<uint32_t> unit = DecodeUtf8(ch);
  std::vector<uint32_t> cps;
  cps.reserve(n);
  while (cps.size() < n) cps.push_back(unit[cps.size() % unit.size()]);
  std::string padding = EncodeUtf8(cps, 0, n);
  CheckStringBytes(a[0].str().size() + padding.size());
  return Str(width > 0 ? a[0].str() + padding : padding + a[0].str());
}

// One match of a pattern: byte offsets into the subject.
struct MatchInfo {
  size_t start = 0;
  size_t end = 0;
  std::string match;
  std::vector<std::string> groups;
};

size_t ByteOffsetOfCodePoint(const std::string& s, double cp_index) {
  size_t want = cp_index <= 0 ? 0 : static_cast<size_t>(cp_index);
  size_t count = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (count == want) return i;
      ++count;
    }
  }
  return s.size();
}

// All matches of a regex or a custom matcher function, at most `limit` (negative: all).
std::vector<MatchInfo> FindMatches(Evaluator& ev, const Value& pattern, const std::string& s,
                                   double limit, const Env& env) {
  std::vector<MatchInfo> out;
  if (limit == 0) return out;
  auto reached = [&]() { return limit >= 0 && static_cast<double>(out.size()) >= limit; };
  if (pattern.is_function() && pattern.fn().kind == Function::Kind::kRegex) {
    ev.ReserveStack(RegexStackBytes(s.size()));
    const std::regex& re = pattern.fn().regex->re;
    uint64_t reads = 0;
    const ChargedIter begin(s.data(), &reads), end(s.data() + s.size(), &reads);
    size_t pos = 0;
    bool first = true;
    while (!reached()) {
      if (!first && pos >= s.size()) break;
      ChargedMatch m;
      auto flags = std::regex_constants::match_default;
      if (pos > 0) flags |= std::regex_constants::match_prev_avail;
      if (!std::regex_search(begin + static_cast<std::ptrdiff_t>(pos), end, m, re, flags)) {
        break;
      }
      MatchInfo mi;
      mi.start = pos + static_cast<size_t>(m.position(0));
      mi.end = mi.start + static_cast<size_t>(m.length(0));
      mi.match = m.str(0);
      for (size_t i = 1; i < m.size(); ++i) mi.groups.push_back(m[i].matched ? m.str(i) : "");
      if (!first && mi.match.empty()) {
        Throw("D1004", "Regular expression matches zero length string");
      }
      first = false;
      pos = mi.end;
      out.push_back(std::move(mi));
    }
    return out;
  }
  // custom matcher: a function(str) returning {match, start, end, groups, next}
  Value res = ev.Apply(pattern, {Str(s)}, Value(), env);
  while (res.is_object() && !reached()) {
    MatchInfo mi;
    Value m = TupleGet(res, "match");
    Value st = TupleGet(res, "start");
    Value en = TupleGet(res, "end");
    mi.match = m.is_string() ? m.str() : "";
    mi.start = ByteOffsetOfCodePoint(s, st.is_number() ? st.num() : 0);
    mi.end = en.is_number() ? ByteOffsetOfCodePoint(s, en.num()) : mi.start + mi.match.size();
    Value groups = TupleGet(res, "groups");
    if (groups.is_array()) {
      for (const auto& g : groups.arr().items()) mi.groups.push_back(g.is_string() ? g.str() : "");
    }
    out.push_back(std::move(mi));
    Value next = TupleGet(res, "next");
    if (!next.is_function()) break;
    res = ev.Apply(next, {}, Value(), env);
  }
  return out;
}

void CheckMatcher(const Value& v) {
  if (v.is_function() && v.fn().kind == Function::Kind::kBuiltin) {
    Throw("T1010",
          "The matcher function argument passed to function does not return the "
          "correct object structure");
  }
}

Value FnContains(Evaluator& ev, Args& a, const Value&, const Env& env) {
  if (a[0].undefined() || a[1].undefined()) return Value();
  if (a[1].is_string()) return Value::Bool(a[0].str().find(a[1].str()) != std::string::npos);
  CheckMatcher(a[1]);
  return Value::Bool(!FindMatches(ev, a[1], a[0].str(), 1, env).empty());
}

Value FnSplit(Evaluator& ev, Args& a, const Value&, const Env& env) {
  if (a[0].undefined()) return Value();
  double limit = -1;
  if (Arg(a, 2).defined()) {
    limit = std::floor(a[2].num());
    if (limit < 0)
      Throw("D3020", "Third argument of split function must evaluate to a positive number");
  }
  const std::string& s = a[0].str();
  Value result = MakeArray();
  auto& out = result.arr().items();
  if (limit == 0) return result;
  if (a[1].is_string()) {
    const std::string& sep = a[1].str();
    if (sep.empty()) {
      auto cps = DecodeUtf8(s);
      for (size_t i = 0; i < cps.size(); ++i) out.push_back(Str(EncodeUtf8(cps, i, i + 1)));
    } else {
      size_t pos = 0;
      for (;;) {
        size_t p = s.find(sep, pos);
        if (p == std::string::npos) {
          out.push_back(Str(s.substr(pos)));
          break;
        }
        out.push_back(Str(s.substr(pos, p - pos)));
        ChargeWork(1);
        pos = p + sep.size();
      }
    }
    if (limit >= 0 && static_cast<double>(out.size()) > limit)
      out.resize(static_cast<size_t>(limit));
    return result;
  }
  CheckMatcher(a[1]);
  auto matches = FindMatches(ev, a[1], s, limit, env);
  size_t start = 0;
  for (const auto& m : matches) {
    out.push_back(Str(s.substr(start, m.start > start ? m.start - start : 0)));
    start = m.end;
  }
  if (limit < 0 || static_cast<double>(matches.size()) < limit)
    out.push_back(Str(s.substr(std::min(start, s.size()))));
  return result;
}

Value FnJoin(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  std::string sep = Arg(a, 1).is_string() ? a[1].str() : "";
  auto& items = a[0].arr().items();
  size_t total = items.empty() ? 0 : sep.size() * (items.size() - 1);
  for (const auto& v : items) total += v.str().size();
  CheckStringBytes(total);
  ChargeWork(items.size() + total / kStringBytesPerUnit);
  std::string out;
  out.reserve(total);
  bool first = true;
  for (const auto& v : items) {
    if (!first) out += sep;
    first = false;
    out += v.str();
  }
  return Str(out);
}

Value FnMatch(Evaluator& ev, Args& a, const Value&, const Env& env) {
  if (a[0].undefined()) return Value();
  double limit = -1;
  if (Arg(a, 2).defined()) {
    limit = a[2].num();
    if (limit < 0)
      Throw("D3040", "Third argument of match function must evaluate to a positive number");
  }
  CheckMatcher(a[1]);
  const std::string& s = a[0].str();
  auto matches = FindMatches(ev, a[1], s, limit, env);
  Value result = MakeSequence();
  for (const auto& m : matches) {
    Value o = MakeObject();
    o.obj().Set("match", Str(m.match));
    o.obj().Set("index", Num(static_cast<double>(CodePointCount(s.substr(0, m.start)))));
    Value groups = MakeArray();
    for (const auto& g : m.groups) groups.arr().push_back(Str(g));
    o.obj().Set("groups", groups);
    result.arr().push_back(o);
  }
  return result;
}

std::string ExpandReplacement(const std::string& repl, const MatchInfo& m) {
  std::string out;
  size_t pos = 0;
  size_t index = repl.find('$', pos);
  while (index != std::string::npos && pos < repl.size()) {
    out += repl.substr(pos, index - pos);
    pos = index + 1;
    char d = pos < repl.size() ? repl[pos] : '\0';
    if (d == '$') {
      out += '$';
      ++pos;
    } else if (d == '0') {
      out += m.match;
      ++pos;
    } else {
      size_t ngroups = m.groups.size();
      size_t max_digits =
          ngroups == 0
              ? 1
              : static_cast<size_t>(std::floor(std::log10(static_cast<double>(ngroups)))) + 1;
      auto parse = [&](size_t digits) -> long {
        std::string sub = repl.substr(pos, digits);
        size_t k = 0;
        while (k < sub.size() && sub[k] >= '0' && sub[k] <= '9') ++k;
        if (k == 0) return -1;
        return std::stol(sub.substr(0, k));
      };
      long idx = parse(max_digits);
      if (max_digits > 1 && idx > static_cast<long>(ngroups)) idx = parse(max_digits - 1);
      if (idx >= 0) {
        if (ngroups > 0 && idx >= 1 && static_cast<size_t>(idx) <= ngroups) {
          out += m.groups[static_cast<size_t>(idx) - 1];
        }
        pos += std::to_string(idx).size();
      } else {
        out += '$';
      }
    }
    index = repl.find('$', pos);
  }
  if (pos < repl.size()) out += repl.substr(pos);
  return out;
}

Value FnReplace(Evaluator& ev, Args& a, const Value&, const Env& env) {
  if (a[0].undefined()) return Value();
  if (a[1].is_string() && a[1].str().empty()) {
    Throw("D3010", "Second argument of replace function cannot be an empty string");
  }
  double limit = -1;
  if (Arg(a, 3).defined()) {
    limit = a[3].num();
    if (limit < 0)
      Throw("D3011", "Fourth argument of replace function must evaluate to a positive number");
  }
  const std::string& s = a[0].str();
  if (limit == 0) return a[0];
  std::string out;
  if (a[1].is_string()) {
    const std::string& pat = a[1].str();
    std::string repl = a[2].is_string() ? a[2].str() : "";
    size_t pos = 0;
    double count = 0;
    size_t idx = s.find(pat, pos);
    while (idx != std::string::npos && (limit < 0 || count < limit)) {
      CheckStringBytes(out.size() + (idx - pos) + repl.size());
      ChargeWork(1 + repl.size() / kStringBytesPerUnit);
      out += s.substr(pos, idx - pos);
      out += repl;
      pos = idx + pat.size();
      ++count;
      idx = s.find(pat, pos);
    }
    out += s.substr(pos);
    return Str(out);
  }
  CheckMatcher(a[1]);
  auto matches = FindMatches(ev, a[1], s, limit, env);
  size_t pos = 0;
  for (const auto& m : matches) {
    CheckStringBytes(out.size());
    size_t before = out.size();
    out += s.substr(pos, m.start > pos ? m.start - pos : 0);
    if (a[2].is_string()) {
      out += ExpandReplacement(a[2].str(), m);
    } else {
      Value mo = MakeObject();
      mo.obj().Set("match", Str(m.match));
      mo.obj().Set("index", Num(static_cast<double>(CodePointCount(s.substr(0, m.start)))));
      Value groups = MakeArray();
      for (const auto& g : m.groups) groups.arr().push_back(Str(g));
      mo.obj().Set("groups", groups);
      Value r = ev.Apply(a[2], {mo}, Value(), env);
      if (!r.is_string()) {
        Throw("D3012", "Attempted to replace a matched string with a non-string value");
      }
      out += r.str();
    }
    ChargeWork(1 + (out.size() - before) / kStringBytesPerUnit);
    pos = m.start + m.match.size();
  }
  if (pos < s.size()) out += s.substr(pos);
  CheckStringBytes(out.size());
  return Str(out);
}

// ---------------------------------------------------------------- numbers

// The syntax jsonata-js's $number accepts, written out rather than as std::regex, whose
// recursive matcher overflows the stack on a long string of digits.
// ^-?[0-9]+(\.[0-9]+)?([Ee][-+]?[0-9]+)?$
bool IsDecimalLiteral(std::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    size_t from = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i > from;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (!digits()) return false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'E' || s[i] == 'e')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

// The whole string matching ^(0[xX][0-9A-Fa-f]+)|(0[oO][0-7]+)|(0[bB][0-1]+)$.
bool IsPrefixedIntegerLiteral(std::string_view s) {
  if (s.size() < 3 || s[0] != '0') return false;
  const char kind = static_cast<char>(std::tolower(static_cast<unsigned char>(s[1])));
  for (char c : s.substr(2)) {
    bool ok = kind == 'x'   ? std::isxdigit(static_cast<unsigned char>(c)) != 0
              : kind == 'o' ? c >= '0' && c <= '7'
              : kind == 'b' ? c == '0' || c == '1'
                            : false;
    if (!ok) return false;
  }
  return true;
}

Value FnNumber(Evaluator&, Args& a, const Value&, const Env&) {
  const Value& v = a[0];
  if (v.undefined()) return Value();
  if (v.is_number()) return v;
  if (v.is_bool()) return Num(v.boolean() ? 1 : 0);
  if (v.is_string()) {
    const std::string& s = v.str();
    if (IsDecimalLiteral(s)) {
      double d = std::strtod(s.c_str(), nullptr);
      if (std::isfinite(d)) return Num(d);
    } else if (IsPrefixedIntegerLiteral(s)) {
      int base = (s[1] == 'x' || s[1] == 'X') ? 16 : (s[1] == 'o' || s[1] == 'O') ? 8 : 2;
      return Num(static_cast<double>(std::strtoull(s.c_str() + 2, nullptr, base)));
    }
  }
  Throw("D3030", "Unable to cast value to a number: " + Stringify(v, false), -1,
        Stringify(v, false));
}

Value FnFloor(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  return Num(std::floor(a[0].num()));
}
Value FnCeil(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  return Num(std::ceil(a[0].num()));
}
Value FnAbs(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  return Num(std::fabs(a[0].num()));
}
Value FnSqrt(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  if (a[0].num() < 0) Throw("D3060", "The sqrt function cannot be applied to a negative number");
  return Num(std::sqrt(a[0].num()));
}
Value FnPower(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  double r = std::pow(a[0].num(), a[1].num());
  if (!std::isfinite(r))
    Throw("D3061",
          "The power function has resulted in a value that cannot be represented as a JSON number");
  return Num(r);
}

double ShiftDecimal(double x, double places) {
  std::string s = JsNumberToString(x);
  size_t e = s.find('e');
  double exp = places;
  std::string mant = s;
  if (e != std::string::npos) {
    mant = s.substr(0, e);
    exp += std::strtod(s.c_str() + e + 1, nullptr);
  }
  std::string t = mant + "e" + JsNumberToString(exp);
  return std::strtod(t.c_str(), nullptr);
}

Value FnRound(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  double arg = a[0].num();
  double precision = Arg(a, 1).is_number() ? a[1].num() : 0;
  if (precision != 0) arg = ShiftDecimal(arg, precision);
  double result = std::floor(arg + 0.5);
  double diff = result - arg;
  if (std::fabs(diff) == 0.5 && std::fabs(std::fmod(result, 2)) == 1) result -= 1;
  if (precision != 0) result = ShiftDecimal(result, -precision);
  if (result == 0) result = 0;  // no -0
  return Num(result);
}

Value FnRandom(Evaluator& ev, Args& a, const Value&, const Env&) {
  if (!a.empty() && a[0].is_number()) {
    // AWS $random(seed): deterministic for a seed
    uint64_t z = static_cast<uint64_t>(static_cast<int64_t>(a[0].num())) + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return Num(static_cast<double>(z >> 11) / 9007199254740992.0);
  }
  return Num(static_cast<double>(ev.NextRandom() >> 11) / 9007199254740992.0);
}

Value FnMillis(Evaluator& ev, Args&, const Value&, const Env&) {
  return Num(static_cast<double>(ev.now_millis()));
}

std::optional<std::string_view> OptStr(const Value& v) {
  if (v.is_string()) return std::string_view(v.str());
  return std::nullopt;
}

Value FnNow(Evaluator& ev, Args& a, const Value&, const Env&) {
  return Str(Unwrap(picture::FromMillis(static_cast<double>(ev.now_millis()), OptStr(Arg(a, 0)),
                                        OptStr(Arg(a, 1)))));
}

Value FnFromMillis(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  return Str(Unwrap(picture::FromMillis(a[0].num(), OptStr(Arg(a, 1)), OptStr(Arg(a, 2)))));
}

Value FnToMillis(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  auto r = Unwrap(picture::ToMillis(a[0].str(), OptStr(Arg(a, 1))));
  if (!r) return Value();
  return Num(*r);
}

// The picture parameters are typed `s`, which lets an undefined argument through (jsonata-js then
// fails with a JavaScript TypeError): no picture, no result.
Value FnFormatInteger(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined() || a[1].undefined()) return Value();
  return Str(Unwrap(picture::FormatInteger(a[0].num(), a[1].str())));
}

Value FnParseInteger(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined() || a[1].undefined()) return Value();
  auto r = Unwrap(picture::ParseInteger(a[0].str(), a[1].str()));
  if (!r) return Value();
  return Num(*r);
}

Value FnFormatNumber(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined() || a[1].undefined()) return Value();
  picture::DecimalFormat fmt;
  const Value& opts = Arg(a, 2);
  if (opts.is_object()) {
    for (const auto& [k, v] : opts.obj().entries()) {
      if (!v.is_string()) continue;
      const std::string& s = v.str();
      if (k == "decimal-separator")
        fmt.decimal_separator = s;
      else if (k == "grouping-separator")
        fmt.grouping_separator = s;
      else if (k == "exponent-separator")
        fmt.exponent_separator = s;
      else if (k == "minus-sign")
        fmt.minus_sign = s;
      else if (k == "infinity")
        fmt.infinity = s;
      else if (k == "NaN")
        fmt.nan = s;
      else if (k == "percent")
        fmt.percent = s;
      else if (k == "per-mille")
        fmt.per_mille = s;
      else if (k == "zero-digit")
        fmt.zero_digit = s;
      else if (k == "digit")
        fmt.digit = s;
      else if (k == "pattern-separator")
        fmt.pattern_separator = s;
    }
  }
  return Str(Unwrap(picture::FormatNumber(a[0].num(), a[1].str(), fmt)));
}

Value FnFormatBase(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  // round half to even, like $round
  double v = a[0].num();
  double r = std::floor(v + 0.5);
  if (std::fabs(r - v) == 0.5 && std::fabs(std::fmod(r, 2)) == 1) r -= 1;
  double radix = Arg(a, 1).is_number() ? a[1].num() : 10;
  if (radix < 2 || radix > 36) {
    Throw("D3100", "The radix of the formatBase function must be between 2 and 36");
  }
  int base = static_cast<int>(radix);
  bool neg = r < 0;
  double x = std::fabs(r);
  std::string digits;
  if (x == 0) digits = "0";
  while (x >= 1) {
    double q = std::floor(x / base);
    int d = static_cast<int>(x - q * base);
    digits += static_cast<char>(d < 10 ? '0' + d : 'a' + d - 10);
    x = q;
  }
  std::reverse(digits.begin(), digits.end());
  return Str((neg ? "-" : "") + digits);
}

// ---------------------------------------------------------------- booleans

Value FnBoolean(Evaluator&, Args& a, const Value&, const Env&) { return Truthy(a[0]); }
Value FnNot(Evaluator&, Args& a, const Value&, const Env&) {
  Value b = Truthy(a[0]);
  if (b.undefined()) return Value();
  return Value::Bool(!b.boolean());
}
Value FnExists(Evaluator&, Args& a, const Value&, const Env&) {
  return Value::Bool(a[0].defined());
}

// ---------------------------------------------------------------- higher order

Value FnMap(Evaluator& ev, Args& a, const Value&, const Env& env) {
  if (a[0].undefined()) return Value();
  Value result = MakeSequence();
  auto items = a[0].arr().items();
  for (size_t i = 0; i < items.size(); ++i) {
    Value r = ev.CallHof(a[1], items[i], Num(static_cast<double>(i)), a[0], env);
    if (r.defined()) result.arr().push_back(std::move(r));
  }
  return result;
}

Value FnFilter(Evaluator& ev, Args& a, const Value&, const Env& env) {
  if (a[0].undefined()) return Value();
  Value result = MakeSequence();
  auto items = a[0].arr().items();
  for (size_t i = 0; i < items.size(); ++i) {
    Value r = ev.CallHof(a[1], items[i], Num(static_cast<double>(i)), a[0], env);
    if (Boolize(r)) result.arr().push_back(items[i]);
  }
  return result;
}

Value FnSingle(Evaluator& ev, Args& a, const Value&, const Env& env) {
  if (a[0].undefined()) return Value();
  auto items = a[0].arr().items();
  bool found = false;
  Value result;
  for (size_t i = 0; i < items.size(); ++i) {
    bool positive = true;
    if (Arg(a, 1).defined()) {
      positive = Boolize(ev.CallHof(a[1], items[i], Num(static_cast<double>(i)), a[0], env));
    }
    if (positive) {
      if (found) {
        Throw("D3138",
              "The $single() function expected exactly 1 matching result.  Instead it "
              "matched more.");
      }
      result = items[i];
      found = true;
    }
  }
  if (!found) {
    Throw("D3139",
          "The $single() function expected exactly 1 matching result.  Instead it "
          "matched 0.");
  }
  return result;
}

Value FnReduce(Evaluator& ev, Args& a, const Value&, const Env& env) {
  if (a[0].undefined()) return Value();
  int arity = a[1].fn().Arity();
  if (arity < 2) {
    Throw("D3050",
          "The second argument of reduce function must be a function with at least two "
          "arguments");
  }
  auto items = a[0].arr().items();
  Value result;
  size_t index = 0;
  if (Arg(a, 2).undefined() && !items.empty()) {
    result = items[0];
    index = 1;
  } else {
    result = Arg(a, 2);
  }
  for (; index < items.size(); ++index) {
    std::vector<Value> args{result, items[index]};
    if (arity >= 3) args.push_back(Num(static_cast<double>(index)));
    if (arity >= 4) args.push_back(a[0]);
    result = ev.Apply(a[1], std::move(args), Value(), env);
  }
  return result;
}

Value FnSift(Evaluator& ev, Args& a, const Value&, const Env& env) {
  if (a[0].undefined()) return Value();
  Value result = MakeObject();
  auto entries = a[0].obj().entries();
  for (const auto& [k, v] : entries) {
    if (Boolize(ev.CallHof(a[1], v, Str(k), a[0], env))) result.obj().Set(k, v);
  }
  if (result.obj().size() == 0) return Value();
  return result;
}

Value FnEach(Evaluator& ev, Args& a, const Value&, const Env& env) {
  if (a[0].undefined()) return Value();
  Value result = MakeSequence();
  auto entries = a[0].obj().entries();
  for (const auto& [k, v] : entries) {
    Value r = ev.CallHof(a[1], v, Str(k), a[0], env);
    if (r.defined()) result.arr().push_back(std::move(r));
  }
  return result;
}

Value FnSort(Evaluator& ev, Args& a, const Value&, const Env& env) {
  if (a[0].undefined()) return Value();
  auto& in = a[0].arr().items();
  if (in.size() <= 1) return a[0];
  std::vector<Value> items = in;
  if (Arg(a, 1).undefined()) {
    bool nums = true, strs = true;
    for (const auto& v : items) {
      nums = nums && v.is_number();
      strs = strs && v.is_string();
    }
    if (!nums && !strs) {
      Throw("D3070",
            "The single argument form of the sort function can only be applied to an "
            "array of strings or an array of numbers.  Use the second argument to "
            "specify a comparison function");
    }
    SortValues(items, [&](const Value& x, const Value& y) {
      return nums ? x.num() > y.num() : x.str() > y.str();
    });
  } else {
    const Value fn = a[1];
    SortValues(items, [&](const Value& x, const Value& y) {
      return Boolize(ev.Apply(fn, {x, y}, Value(), env));
    });
  }
  return MakeSequence(std::move(items));
}

Value FnShuffle(Evaluator& ev, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  std::vector<Value> items = a[0].arr().items();
  ChargeWork(items.size());
  for (size_t i = items.size(); i > 1; --i) {
    size_t j = static_cast<size_t>(ev.NextRandom() % i);
    std::swap(items[i - 1], items[j]);
  }
  return MakeArray(std::move(items));
}

Value FnZip(Evaluator&, Args& a, const Value&, const Env&) {
  size_t len = a.empty() ? 0 : SIZE_MAX;
  for (const auto& v : a) len = std::min(len, v.is_array() ? v.arr().size() : size_t{0});
  Value result = MakeArray();
  for (size_t i = 0; i < len; ++i) {
    ChargeWork(1 + a.size());
    Value tuple = MakeArray();
    for (const auto& v : a) tuple.arr().push_back(v.arr()[i]);
    result.arr().push_back(tuple);
  }
  return result;
}

// ---------------------------------------------------------------- objects and arrays

// Distinct keys in first-seen order (`seen` makes the de-duplication linear).
void CollectKeys(const Value& v, std::vector<std::string>& keys,
                 std::unordered_set<std::string>& seen) {
  ChargeWork(1);
  if (v.is_array()) {
    for (const auto& item : v.arr().items()) CollectKeys(item, keys, seen);
  } else if (v.is_object()) {
    ChargeWork(v.obj().size());
    for (const auto& [k, val] : v.obj().entries()) {
      if (seen.insert(k).second) keys.push_back(k);
    }
  }
}

Value FnKeys(Evaluator&, Args& a, const Value&, const Env&) {
  std::vector<std::string> keys;
  std::unordered_set<std::string> seen;
  CollectKeys(a[0], keys, seen);
  Value result = MakeSequence();
  for (auto& k : keys) result.arr().push_back(Str(k));
  return result;
}

Value FnLookup(Evaluator&, Args& a, const Value&, const Env&) {
  return LookupField(a[0], a[1].is_string() ? a[1].str() : "");
}

Value Spread(const Value& v) {
  if (v.is_array()) {
    Value result = MakeSequence();
    for (const auto& item : v.arr().items()) result = AppendValues(result, Spread(item));
    return result;
  }
  if (v.is_object()) {
    Value result = MakeSequence();
    for (const auto& [k, val] : v.obj().entries()) {
      Value o = MakeObject();
      o.obj().Set(k, val);
      result.arr().push_back(o);
    }
    return result;
  }
  return v;
}

Value FnSpread(Evaluator&, Args& a, const Value&, const Env&) { return Spread(a[0]); }

Value FnMerge(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  Value result = MakeObject();
  for (const auto& o : a[0].arr().items()) {
    ChargeWork(1);
    if (!o.is_object()) continue;
    ChargeWork(o.obj().size());
    for (const auto& [k, v] : o.obj().entries()) result.obj().Set(k, v);
  }
  return result;
}

Value FnAppend(Evaluator&, Args& a, const Value&, const Env&) { return AppendValues(a[0], a[1]); }

Value FnReverse(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  auto& in = a[0].arr().items();
  if (in.size() <= 1) return a[0];
  ChargeWork(in.size());
  std::vector<Value> items(in.rbegin(), in.rend());
  return MakeArray(std::move(items));
}

Value FnDistinct(Evaluator&, Args& a, const Value&, const Env&) {
  const Value& v = a[0];
  if (v.undefined()) return Value();
  if (!v.is_array() || v.arr().size() <= 1) return v;
  std::vector<Value> out;
  for (const auto& item : v.arr().items()) {
    bool dup = false;
    for (const auto& o : out) {
      if (DeepEqual(item, o)) {
        dup = true;
        break;
      }
    }
    if (!dup) out.push_back(item);
  }
  return v.arr().sequence ? MakeSequence(std::move(out)) : MakeArray(std::move(out));
}

Value FnType(Evaluator&, Args& a, const Value&, const Env&) {
  switch (a[0].type()) {
    case VType::kUndefined:
      return Value();
    case VType::kNull:
      return Str("null");
    case VType::kBool:
      return Str("boolean");
    case VType::kNumber:
      return Str("number");
    case VType::kString:
      return Str("string");
    case VType::kArray:
      return Str("array");
    case VType::kObject:
      return Str("object");
    case VType::kFunction:
      return Str("function");
  }
  return Value();
}

Value FnClone(Evaluator&, Args& a, const Value&, const Env&) { return CloneValue(a[0]); }

Value FnError(Evaluator&, Args& a, const Value&, const Env&) {
  Throw("D3137", Arg(a, 0).is_string() ? a[0].str() : "$error() function evaluated");
}

Value FnAssert(Evaluator&, Args& a, const Value&, const Env&) {
  if (!a[0].boolean()) {
    Throw("D3141", Arg(a, 1).is_string() ? a[1].str() : "$assert() statement failed");
  }
  return Value();
}

Value FnEval(Evaluator& ev, Args& a, const Value& input, const Env& env) {
  if (a[0].undefined()) return Value();
  Value in = input;
  if (Arg(a, 1).defined()) {
    in = a[1];
    if (in.is_array() && !in.arr().sequence) {
      Value w = MakeSequence({in});
      w.arr().outer_wrapper = true;
      in = w;
    }
  }
  return ev.EvalText(a[0].str(), in, env);
}

// ---------------------------------------------------------------- encoding

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

Value FnBase64Encode(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  const std::string& s = a[0].str();
  std::string out;
  size_t i = 0;
  while (i + 2 < s.size()) {
    uint32_t n = (static_cast<unsigned char>(s[i]) << 16) |
                 (static_cast<unsigned char>(s[i + 1]) << 8) | static_cast<unsigned char>(s[i + 2]);
    out += kB64[(n >> 18) & 63];
    out += kB64[(n >> 12) & 63];
    out += kB64[(n >> 6) & 63];
    out += kB64[n & 63];
    i += 3;
  }
  if (i + 1 == s.size()) {
    uint32_t n = static_cast<unsigned char>(s[i]) << 16;
    out += kB64[(n >> 18) & 63];
    out += kB64[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == s.size()) {
    uint32_t n =
        (static_cast<unsigned char>(s[i]) << 16) | (static_cast<unsigned char>(s[i + 1]) << 8);
    out += kB64[(n >> 18) & 63];
    out += kB64[(n >> 12) & 63];
    out += kB64[(n >> 6) & 63];
    out += '=';
  }
  return Str(out);
}

Value FnBase64Decode(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  std::string out;
  uint32_t buf = 0;
  int bits = 0;
  for (char c : a[0].str()) {
    const char* p = std::strchr(kB64, c);
    if (c == '=' || c == '\0' || p == nullptr) continue;
    buf = (buf << 6) | static_cast<uint32_t>(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xFF);
    }
  }
  return Str(out);
}

std::string PercentEncode(const std::string& s, const char* keep) {
  if (!IsValidUtf8(s)) Throw("D3140", "Malformed URL passed to $encodeUrl(): " + s);
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || std::strchr(keep, c) != nullptr) {
      out += static_cast<char>(c);
    } else {
      char b[4];
      std::snprintf(b, sizeof(b), "%%%02X", c);
      out += b;
    }
  }
  return out;
}

std::string PercentDecode(const std::string& s, const char* reserved) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size() + 0 && i + 2 > s.size() - 1 + 1) {
        Throw("D3140", "Malformed URL passed to $decodeUrl(): " + s);
      }
      auto hex = [&](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      int hi = i + 1 < s.size() ? hex(s[i + 1]) : -1;
      int lo = i + 2 < s.size() ? hex(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) Throw("D3140", "Malformed URL passed to $decodeUrl(): " + s);
      char c = static_cast<char>(hi * 16 + lo);
      if (static_cast<unsigned char>(c) < 0x80 && reserved != nullptr &&
          std::strchr(reserved, c) != nullptr && c != '\0') {
        out += s.substr(i, 3);
      } else {
        out += c;
      }
      i += 2;
    } else {
      out += s[i];
    }
  }
  if (!IsValidUtf8(out)) Throw("D3140", "Malformed URL passed to $decodeUrl(): " + s);
  return out;
}

Value FnEncodeUrlComponent(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  return Str(PercentEncode(a[0].str(), "-_.!~*'()"));
}
Value FnEncodeUrl(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  return Str(PercentEncode(a[0].str(), "-_.!~*'();/?:@&=+$,#"));
}
Value FnDecodeUrlComponent(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  return Str(PercentDecode(a[0].str(), nullptr));
}
Value FnDecodeUrl(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  return Str(PercentDecode(a[0].str(), ";/?:@&=+$,#"));
}

// ---------------------------------------------------------------- AWS additions

Value FnPartition(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  double size = a[1].num();
  if (size <= 0 || size != std::floor(size)) {
    Throw("D3200", "$partition: chunk size must be a positive integer");
  }
  auto& items = a[0].arr().items();
  Value result = MakeArray();
  ChargeWork(items.size());
  // A chunk size beyond the array (up to 1e308) means one chunk; clamp before converting.
  size_t n = size >= static_cast<double>(items.size()) ? std::max<size_t>(items.size(), 1)
                                                       : static_cast<size_t>(size);
  for (size_t i = 0; i < items.size(); i += n) {
    std::vector<Value> chunk(
        items.begin() + static_cast<std::ptrdiff_t>(i),
        items.begin() + static_cast<std::ptrdiff_t>(std::min(i + n, items.size())));
    result.arr().push_back(MakeArray(std::move(chunk)));
  }
  return result;
}

Value FnRange(Evaluator&, Args& a, const Value&, const Env&) {
  double start = a[0].num(), end = a[1].num();
  double step = Arg(a, 2).is_number() ? a[2].num() : 1;
  if (step == 0) Throw("D3201", "$range: step must not be zero");
  // A sequence, as AWS's $range yields: a one-item result is unwrapped like [1..1].
  Value result = MakeSequence();
  for (double x = start; step > 0 ? x <= end : x >= end; x += step) {
    if (result.arr().size() >= 10000000) Throw("D2014", "$range: too many items");
    ChargeWork(1);
    result.arr().push_back(Num(x));
  }
  return result;
}

Value FnHash(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  std::string alg = Arg(a, 1).is_string() ? a[1].str() : "SHA-256";
  const EVP_MD* md = nullptr;
  if (alg == "MD5")
    md = EVP_md5();
  else if (alg == "SHA-1")
    md = EVP_sha1();
  else if (alg == "SHA-256")
    md = EVP_sha256();
  else if (alg == "SHA-384")
    md = EVP_sha384();
  else if (alg == "SHA-512")
    md = EVP_sha512();
  else
    Throw("D3202", "$hash: unsupported algorithm " + alg);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const std::string& s = a[0].str();
  if (EVP_Digest(s.data(), s.size(), digest, &len, md, nullptr) != 1) {
    Throw("D3202", "$hash: digest failed");
  }
  std::string out;
  char b[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(b, sizeof(b), "%02x", digest[i]);
    out += b;
  }
  return Str(out);
}

Value FnUuid(Evaluator& ev, Args&, const Value&, const Env&) {
  uint64_t hi = ev.NextRandom(), lo = ev.NextRandom();
  hi = (hi & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;
  lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
  return Str(buf);
}

Value JsonToOwned(const Json& j) {
  switch (j.type()) {
    case Json::value_t::array: {
      Value out = MakeArray();
      for (const auto& el : j) out.arr().push_back(JsonToOwned(el));
      return out;
    }
    case Json::value_t::object: {
      Value out = MakeObject();
      for (auto it = j.begin(); it != j.end(); ++it)
        out.obj().Set(it.key(), JsonToOwned(it.value()));
      return out;
    }
    default:
      return FromJsonLazy(j);  // scalars hold no reference to `j`
  }
}

Value FnParse(Evaluator&, Args& a, const Value&, const Env&) {
  if (a[0].undefined()) return Value();
  // A deeper document would overflow the stack when converted or copied.
  if (JsonTextDepth(a[0].str()) > kMaxJsonDepth) {
    Throw("D3203", "$parse: JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  Json j = Json::parse(a[0].str(), nullptr, false);
  if (j.is_discarded()) Throw("D3203", "$parse: invalid JSON string");
  return JsonToOwned(j);
}

// ---------------------------------------------------------------- registry

struct Spec {
  const char* name;
  const char* sig;
  BuiltinFn fn;
};

const Spec kStandard[] = {
    {"sum", "<a<n>:n>", FnSum},
    {"count", "<a:n>", FnCount},
    {"max", "<a<n>:n>", FnMax},
    {"min", "<a<n>:n>", FnMin},
    {"average", "<a<n>:n>", FnAverage},
    {"string", "<x-b?:s>", FnString},
    {"substring", "<s-nn?:s>", FnSubstring},
    {"substringBefore", "<s-s:s>", FnSubstringBefore},
    {"substringAfter", "<s-s:s>", FnSubstringAfter},
    {"lowercase", "<s-:s>", FnLowercase},
    {"uppercase", "<s-:s>", FnUppercase},
    {"length", "<s-:n>", FnLength},
    {"trim", "<s-:s>", FnTrim},
    {"pad", "<s-ns?:s>", FnPad},
    {"match", "<s-f<s:o>n?:a<o>>", FnMatch},
    {"contains", "<s-(sf):b>", FnContains},
    {"replace", "<s-(sf)(sf)n?:s>", FnReplace},
    {"split", "<s-(sf)n?:a<s>>", FnSplit},
    {"join", "<a<s>s?:s>", FnJoin},
    {"formatNumber", "<n-so?:s>", FnFormatNumber},
    {"formatBase", "<n-n?:s>", FnFormatBase},
    {"formatInteger", "<n-s:s>", FnFormatInteger},
    {"parseInteger", "<s-s:n>", FnParseInteger},
    {"number", "<(nsb)-:n>", FnNumber},
    {"floor", "<n-:n>", FnFloor},
    {"ceil", "<n-:n>", FnCeil},
    {"round", "<n-n?:n>", FnRound},
    {"abs", "<n-:n>", FnAbs},
    {"sqrt", "<n-:n>", FnSqrt},
    {"power", "<n-n:n>", FnPower},
    {"random", "<:n>", FnRandom},
    {"boolean", "<x-:b>", FnBoolean},
    {"not", "<x-:b>", FnNot},
    {"map", "<af>", FnMap},
    {"zip", "<a+>", FnZip},
    {"filter", "<af>", FnFilter},
    {"single", "<af?>", FnSingle},
    {"reduce", "<afj?:j>", FnReduce},
    {"sift", "<o-f?:o>", FnSift},
    {"keys", "<x-:a<s>>", FnKeys},
    {"lookup", "<x-s:x>", FnLookup},
    {"append", "<xx:a>", FnAppend},
    {"exists", "<x:b>", FnExists},
    {"spread", "<x-:a<o>>", FnSpread},
    {"merge", "<a<o>:o>", FnMerge},
    {"reverse", "<a:a>", FnReverse},
    {"each", "<o-f:a>", FnEach},
    {"error", "<s?:x>", FnError},
    {"assert", "<bs?:x>", FnAssert},
    {"type", "<x:s>", FnType},
    {"sort", "<af?:a>", FnSort},
    {"shuffle", "<a:a>", FnShuffle},
    {"distinct", "<x:x>", FnDistinct},
    {"base64encode", "<s-:s>", FnBase64Encode},
    {"base64decode", "<s-:s>", FnBase64Decode},
    {"encodeUrlComponent", "<s-:s>", FnEncodeUrlComponent},
    {"encodeUrl", "<s-:s>", FnEncodeUrl},
    {"decodeUrlComponent", "<s-:s>", FnDecodeUrlComponent},
    {"decodeUrl", "<s-:s>", FnDecodeUrl},
    {"eval", "<sx?:x>", FnEval},
    {"toMillis", "<s-s?:n>", FnToMillis},
    {"fromMillis", "<n-s?s?:s>", FnFromMillis},
    {"clone", "<(oa)-:o>", FnClone},
    {"now", "<s?s?:s>", FnNow},
    {"millis", "<:n>", FnMillis},
};

const Spec kAws[] = {
    {"partition", "<an:a>", FnPartition},
    {"range", "<nnn?:a>", FnRange},
    {"hash", "<s-s?:s>", FnHash},
    {"random", "<n?:n>", FnRandom},
    {"uuid", "<:s>", FnUuid},
    {"parse", "<s-:x>", FnParse},
};

using Registry = std::unordered_map<std::string, std::unique_ptr<Builtin>>;

std::unique_ptr<Builtin> MakeBuiltin(const Spec& s) {
  auto b = std::make_unique<Builtin>();
  b->name = s.name;
  b->signature_text = s.sig;
  b->fn = s.fn;
  b->signature = ParseSignature(s.sig);
  int arity = 0;
  for (const auto& p : b->signature->params) {
    if (p.regex.empty() || p.regex.back() != '?' || p.context) ++arity;
  }
  b->arity = arity;
  auto f = std::make_shared<Function>();
  f->kind = Function::Kind::kBuiltin;
  f->builtin = b.get();
  b->value = Value::FromFunction(std::move(f));
  return b;
}

// Immutable after construction (thread-safe static initialisation), so shared by all threads.
const Registry& StandardRegistry() {
  static const Registry r = [] {
    Registry reg;
    for (const auto& s : kStandard) reg[s.name] = MakeBuiltin(s);
    return reg;
  }();
  return r;
}

const Registry& AwsRegistry() {
  static const Registry r = [] {
    Registry reg;
    for (const auto& s : kAws) reg[s.name] = MakeBuiltin(s);
    return reg;
  }();
  return r;
}

}  // namespace

const Builtin* FindBuiltin(std::string_view name, bool aws) {
  std::string key(name);
  if (aws) {
    const auto& a = AwsRegistry();
    auto it = a.find(key);
    if (it != a.end()) return it->second.get();
  }
  const auto& s = StandardRegistry();
  auto it = s.find(key);
  return it == s.end() ? nullptr : it->second.get();
}

}  // namespace engage::jsonata::internal
