// fn:format-number (F&O 3.1 section 4.7) for JSONata's $formatNumber. See picture.h.
//
// The picture is validated (4.7.3, errors D3080..D3093), analysed into the variables of 4.7.4,
// and the number rendered per 4.7.5. Rounding reproduces JSONata's $round (half to even on the
// shortest decimal representation) so results match jsonata-js digit for digit.
#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <numeric>

#include "jsonata/picture.h"
#include "jsonata/picture_internal.h"

namespace engage::jsonata::picture {
namespace {

using internal::DecodeUtf8;
using internal::EncodeUtf8;
using internal::JsNumberToString;

// The decimal-format properties as single characters (strings for the ones only output).
struct Symbols {
  char32_t decimal_separator;
  char32_t grouping_separator;
  char32_t exponent_separator;
  char32_t percent;
  char32_t per_mille;
  char32_t zero;
  char32_t digit;
  char32_t pattern_separator;
  std::u32string minus_sign;
  std::u32string infinity;
  std::u32string nan;

  bool IsFamilyDigit(char32_t c) const { return c >= zero && c <= zero + 9; }
  bool IsDigitSign(char32_t c) const { return IsFamilyDigit(c) || c == digit; }
  bool IsActive(char32_t c) const {
    return IsFamilyDigit(c) || c == decimal_separator || c == exponent_separator ||
           c == grouping_separator || c == digit || c == pattern_separator;
  }
};

char32_t FirstCodePoint(const std::string& s) {
  const std::u32string cps = DecodeUtf8(s);
  return cps.empty() ? 0 : cps[0];
}

Symbols MakeSymbols(const DecimalFormat& f) {
  return Symbols{FirstCodePoint(f.decimal_separator),
                 FirstCodePoint(f.grouping_separator),
                 FirstCodePoint(f.exponent_separator),
                 FirstCodePoint(f.percent),
                 FirstCodePoint(f.per_mille),
                 FirstCodePoint(f.zero_digit),
                 FirstCodePoint(f.digit),
                 FirstCodePoint(f.pattern_separator),
                 DecodeUtf8(f.minus_sign),
                 DecodeUtf8(f.infinity),
                 DecodeUtf8(f.nan)};
}

size_t Count(std::u32string_view s, char32_t c) { return std::count(s.begin(), s.end(), c); }
bool Contains(std::u32string_view s, char32_t c) { return s.find(c) != std::u32string_view::npos; }

// A sub-picture split as in F&O 4.7.4: passive prefix and suffix around the active part,
// which splits into mantissa and exponent, the mantissa into integer and fractional parts.
struct SubPicture {
  std::u32string whole;
  std::u32string prefix;
  std::u32string suffix;
  std::u32string active;
  std::u32string mantissa;
  std::optional<std::u32string> exponent;
  std::u32string integer_part;
  std::u32string fractional_part;
};

Outcome<SubPicture> Split(std::u32string_view sub, const Symbols& sym) {
  // The exponent separator is usually a letter ('e') that may also occur in passive text, so
  // it never starts or ends the active part on its own.
  auto is_anchor = [&sym](char32_t c) { return sym.IsActive(c) && c != sym.exponent_separator; };
  auto first = std::find_if(sub.begin(), sub.end(), is_anchor);
  if (first == sub.end()) {
    return Error{"D3086", "The picture string must contain at least one digit or separator"};
  }
  auto last = std::find_if(sub.rbegin(), sub.rend(), is_anchor);
  const size_t begin = first - sub.begin();
  const size_t end = sub.size() - (last - sub.rbegin());  // one past the last anchor
  SubPicture p;
  p.whole = std::u32string(sub);
  p.prefix = std::u32string(sub.substr(0, begin));
  p.suffix = std::u32string(sub.substr(end));
  p.active = std::u32string(sub.substr(begin, end - begin));
  const size_t exponent_pos = sub.find(sym.exponent_separator, begin);
  // An exponent separator directly after the active part still counts ("0e" has an empty,
  // hence invalid, exponent).
  if (exponent_pos == std::u32string_view::npos || exponent_pos > end) {
    p.mantissa = p.active;
  } else {
    const size_t relative = exponent_pos - begin;
    p.mantissa = p.active.substr(0, relative);
    p.exponent = relative + 1 <= p.active.size() ? p.active.substr(relative + 1) : U"";
  }
  const size_t decimal_pos = p.mantissa.find(sym.decimal_separator);
  if (decimal_pos == std::u32string::npos) {
    p.integer_part = p.mantissa;
  } else {
    p.integer_part = p.mantissa.substr(0, decimal_pos);
    p.fractional_part = p.mantissa.substr(decimal_pos + 1);
  }
  return p;
}

// F&O 4.7.3. Every rule is checked and the last violated one reported, as jsonata-js does,
// so that a picture breaking several rules yields the same code.
std::optional<Error> Validate(const SubPicture& p, const Symbols& sym) {
  const char* code = nullptr;
  const std::u32string& s = p.whole;
  if (Count(s, sym.decimal_separator) > 1) code = "D3081";
  if (Count(s, sym.percent) > 1) code = "D3082";
  if (Count(s, sym.per_mille) > 1) code = "D3083";
  if (Contains(s, sym.percent) && Contains(s, sym.per_mille)) code = "D3084";
  if (std::none_of(p.mantissa.begin(), p.mantissa.end(),
                   [&sym](char32_t c) { return sym.IsDigitSign(c); })) {
    code = "D3085";
  }
  if (std::any_of(p.active.begin(), p.active.end(),
                  [&sym](char32_t c) { return !sym.IsActive(c); })) {
    code = "D3086";
  }
  const size_t decimal_pos = s.find(sym.decimal_separator);
  if (decimal_pos != std::u32string::npos) {
    if ((decimal_pos > 0 && s[decimal_pos - 1] == sym.grouping_separator) ||
        (decimal_pos + 1 < s.size() && s[decimal_pos + 1] == sym.grouping_separator)) {
      code = "D3087";
    }
  } else if (!p.integer_part.empty() && p.integer_part.back() == sym.grouping_separator) {
    code = "D3088";
  }
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] == sym.grouping_separator && s[i + 1] == sym.grouping_separator) code = "D3089";
  }
  const size_t first_optional = p.integer_part.find(sym.digit);
  if (first_optional != std::u32string::npos &&
      std::any_of(p.integer_part.begin(), p.integer_part.begin() + first_optional,
                  [&sym](char32_t c) { return sym.IsFamilyDigit(c); })) {
    code = "D3090";
  }
  const size_t last_optional = p.fractional_part.rfind(sym.digit);
  if (last_optional != std::u32string::npos &&
      std::any_of(p.fractional_part.begin() + last_optional, p.fractional_part.end(),
                  [&sym](char32_t c) { return sym.IsFamilyDigit(c); })) {
    code = "D3091";
  }
  if (p.exponent && !p.exponent->empty() &&
      (Contains(s, sym.percent) || Contains(s, sym.per_mille))) {
    code = "D3092";
  }
  if (p.exponent &&
      (p.exponent->empty() || std::any_of(p.exponent->begin(), p.exponent->end(),
                                          [&sym](char32_t c) { return !sym.IsFamilyDigit(c); }))) {
    code = "D3093";
  }
  if (code == nullptr) return std::nullopt;
  return Error{code, "Invalid picture string for $formatNumber"};
}

// The variables of F&O 4.7.4.
struct Analysis {
  std::vector<int> integer_grouping;     // digits to the right of each separator, left first
  int regular_grouping = 0;              // interval when the integer grouping repeats
  std::vector<int> fractional_grouping;  // digits to the left of each separator
  int minimum_integer_size = 0;
  int scaling_factor = 0;
  int minimum_fractional_size = 0;
  int maximum_fractional_size = 0;
  int minimum_exponent_size = 0;
  std::u32string prefix;
  std::u32string suffix;
  std::u32string whole;
};

Analysis Analyse(const SubPicture& p, const Symbols& sym) {
  Analysis a;
  auto count_digits = [&sym](std::u32string_view s, bool optional_too) {
    return static_cast<int>(std::count_if(s.begin(), s.end(), [&](char32_t c) {
      return sym.IsFamilyDigit(c) || (optional_too && c == sym.digit);
    }));
  };
  const std::u32string_view integer_part = p.integer_part;
  const std::u32string_view fractional_part = p.fractional_part;
  for (size_t i = 0; i < integer_part.size(); ++i) {
    if (integer_part[i] == sym.grouping_separator) {
      a.integer_grouping.push_back(count_digits(integer_part.substr(i), true));
    }
  }
  if (!a.integer_grouping.empty()) {
    int factor = 0;
    for (int pos : a.integer_grouping) factor = std::gcd(factor, pos);
    bool regular = factor > 0;
    for (size_t index = 1; regular && index <= a.integer_grouping.size(); ++index) {
      regular = std::find(a.integer_grouping.begin(), a.integer_grouping.end(),
                          static_cast<int>(index) * factor) != a.integer_grouping.end();
    }
    a.regular_grouping = regular ? factor : 0;
  }
  for (size_t i = 0; i < fractional_part.size(); ++i) {
    if (fractional_part[i] == sym.grouping_separator) {
      a.fractional_grouping.push_back(count_digits(fractional_part.substr(0, i), true));
    }
  }
  a.minimum_integer_size = count_digits(integer_part, false);
  a.scaling_factor = a.minimum_integer_size;
  a.minimum_fractional_size = count_digits(fractional_part, false);
  a.maximum_fractional_size = count_digits(fractional_part, true);
  const bool exponent_present = p.exponent.has_value();
  if (a.minimum_integer_size == 0 && a.maximum_fractional_size == 0) {
    if (exponent_present) {
      a.minimum_fractional_size = 1;
      a.maximum_fractional_size = 1;
    } else {
      a.minimum_integer_size = 1;
    }
  }
  if (exponent_present && a.minimum_integer_size == 0 && Contains(integer_part, sym.digit)) {
    a.minimum_integer_size = 1;
  }
  if (a.minimum_integer_size == 0 && a.minimum_fractional_size == 0) {
    a.minimum_fractional_size = 1;
  }
  if (exponent_present) a.minimum_exponent_size = count_digits(*p.exponent, false);
  a.prefix = p.prefix;
  a.suffix = p.suffix;
  a.whole = p.whole;
  return a;
}

double ParseDouble(const std::string& text) {
  double value = std::nan("");
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

// Scales by 10^shift through the decimal string, as JSONata's $round does, so that binary
// error in value * 10^shift cannot move a tie.
double ShiftDecimal(double value, int shift) {
  const std::string text = JsNumberToString(value);
  const size_t e = text.find('e');
  int exponent = 0;
  if (e != std::string::npos) {
    std::string_view exp_text = std::string_view(text).substr(e + 1);
    if (!exp_text.empty() && exp_text[0] == '+') exp_text.remove_prefix(1);
    std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exponent);
  }
  return ParseDouble(text.substr(0, e) + "e" + std::to_string(exponent + shift));
}

// JSONata's $round(value, precision): round half to even at `precision` decimals.
double RoundHalfEven(double value, int precision) {
  if (precision != 0) value = ShiftDecimal(value, precision);
  // Math.round: nearest integer, ties towards +infinity.
  double result = std::floor(value);
  if (value - result >= 0.5) result += 1;
  if (std::fabs(result - value) == 0.5 && std::fabs(std::fmod(result, 2)) == 1) result -= 1;
  if (precision != 0) result = ShiftDecimal(result, -precision);
  return result == 0 ? 0 : result;  // no negative zero
}

// Number.prototype.toFixed of a non-negative value, in ASCII.
std::string ToFixed(double value, int digits) {
  if (value >= 1e21) return JsNumberToString(value);
  std::array<char, 512> buf{};
  auto res = std::to_chars(buf.data(), buf.data() + buf.size(), value, std::chars_format::fixed,
                           std::min(digits, 100));
  return std::string(buf.data(), res.ptr - buf.data());
}

std::u32string ToFamily(std::string_view ascii, char32_t zero) {
  std::u32string out;
  for (char c : ascii) {
    out.push_back(c >= '0' && c <= '9' ? zero + (c - '0') : static_cast<char32_t>(c));
  }
  return out;
}

std::string Render(double value, const Analysis& pic, const Symbols& sym) {
  double adjusted = value;
  if (Contains(pic.whole, sym.percent)) {
    adjusted = value * 100;
  } else if (Contains(pic.whole, sym.per_mille)) {
    adjusted = value * 1000;
  }
  if (std::isinf(adjusted)) return EncodeUtf8(pic.prefix + sym.infinity + pic.suffix);

  // Mantissa and exponent (4.7.5 rule 5). The mantissa is kept within
  // [10^(scaling-1), 10^scaling], the bounds jsonata-js uses (so 10 with "0e0" stays "10e0").
  double mantissa = std::fabs(adjusted);
  std::optional<int> exponent;
  if (pic.minimum_exponent_size > 0) {
    exponent = 0;
    if (mantissa != 0) {
      const double max_mantissa = std::pow(10.0, pic.scaling_factor);
      const double min_mantissa = std::pow(10.0, pic.scaling_factor - 1);
      while (mantissa < min_mantissa) {
        mantissa *= 10;
        --*exponent;
      }
      while (mantissa > max_mantissa) {
        mantissa /= 10;
        ++*exponent;
      }
    }
  }
  const double rounded = RoundHalfEven(mantissa, pic.maximum_fractional_size);
  const std::string fixed = ToFixed(rounded, pic.maximum_fractional_size);
  const size_t point = fixed.find('.');
  std::u32string integer_digits = ToFamily(fixed.substr(0, point), sym.zero);
  std::u32string fraction_digits =
      point == std::string::npos ? U"" : ToFamily(fixed.substr(point + 1), sym.zero);
  // Drop insignificant zeros, then pad back to the minimum sizes (rules 8 and 9).
  const size_t first_nonzero = integer_digits.find_first_not_of(sym.zero);
  integer_digits.erase(
      0, first_nonzero == std::u32string::npos ? integer_digits.size() : first_nonzero);
  const size_t last_nonzero = fraction_digits.find_last_not_of(sym.zero);
  fraction_digits.resize(last_nonzero == std::u32string::npos ? 0 : last_nonzero + 1);
  if (static_cast<int>(integer_digits.size()) < pic.minimum_integer_size) {
    integer_digits.insert(0, pic.minimum_integer_size - integer_digits.size(), sym.zero);
  }
  if (static_cast<int>(fraction_digits.size()) < pic.minimum_fractional_size) {
    fraction_digits.append(pic.minimum_fractional_size - fraction_digits.size(), sym.zero);
  }
  // Grouping separators (rules 10 and 11), only where digits lie on both sides.
  const int integer_size = static_cast<int>(integer_digits.size());
  if (pic.regular_grouping > 0) {
    // Rightmost first, so each insertion lies left of those already made.
    const int groups = (integer_size - 1) / pic.regular_grouping;
    for (int group = 1; group <= groups; ++group) {
      integer_digits.insert(integer_size - group * pic.regular_grouping, 1, sym.grouping_separator);
    }
  } else {
    for (int pos : pic.integer_grouping) {  // leftmost first keeps later offsets valid
      if (pos > 0 && pos < integer_size) {
        integer_digits.insert(integer_digits.size() - pos, 1, sym.grouping_separator);
      }
    }
  }
  std::vector<int> fractional_grouping = pic.fractional_grouping;
  std::sort(fractional_grouping.rbegin(), fractional_grouping.rend());
  const int fraction_size = static_cast<int>(fraction_digits.size());
  for (int pos : fractional_grouping) {  // rightmost first keeps earlier offsets valid
    if (pos > 0 && pos < fraction_size) fraction_digits.insert(pos, 1, sym.grouping_separator);
  }
  std::u32string result = pic.prefix + integer_digits;
  if (!fraction_digits.empty()) result += sym.decimal_separator + fraction_digits;
  if (exponent) {
    std::u32string exponent_digits =
        ToFamily(std::to_string(std::abs(static_cast<int64_t>(*exponent))), sym.zero);
    if (static_cast<int>(exponent_digits.size()) < pic.minimum_exponent_size) {
      exponent_digits.insert(0, pic.minimum_exponent_size - exponent_digits.size(), sym.zero);
    }
    result += sym.exponent_separator;
    if (*exponent < 0) result += sym.minus_sign;
    result += exponent_digits;
  }
  result += pic.suffix;
  return EncodeUtf8(result);
}

}  // namespace

Outcome<std::string> FormatNumber(double value, std::string_view picture,
                                  const DecimalFormat& format) {
  const Symbols sym = MakeSymbols(format);
  const std::u32string pic = DecodeUtf8(picture);
  std::vector<std::u32string_view> subs;
  size_t start = 0;
  while (true) {
    const size_t sep = pic.find(sym.pattern_separator, start);
    subs.push_back(std::u32string_view(pic).substr(start, sep - start));
    if (sep == std::u32string::npos) break;
    start = sep + 1;
  }
  if (subs.size() > 2) {
    return Error{"D3080", "The picture string must not contain more than one pattern separator"};
  }
  std::vector<Analysis> analyses;
  for (std::u32string_view sub : subs) {
    auto split = Split(sub, sym);
    if (!split.ok()) return split.error();
    if (auto error = Validate(*split, sym)) return *error;
    analyses.push_back(Analyse(*split, sym));
  }
  if (std::isnan(value)) return EncodeUtf8(sym.nan);
  if (analyses.size() == 1) {
    // The negative sub-picture defaults to the positive one preceded by the minus sign.
    analyses.push_back(analyses[0]);
    analyses[1].prefix = sym.minus_sign + analyses[1].prefix;
  }
  return Render(value, value >= 0 ? analyses[0] : analyses[1], sym);
}

}  // namespace engage::jsonata::picture
