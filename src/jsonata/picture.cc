// Picture-string formatting and parsing (XPath F&O 3.1) for JSONata: shared helpers and
// fn:format-integer ($formatInteger / $parseInteger). See picture.h.
//
// Where the W3C text leaves room, behaviour follows jsonata-js, the reference implementation
// the conformance corpus was written against (English words only, its treatment of grouping
// separators and ordinals). Deliberate differences from jsonata-js are noted where they occur.
#include "jsonata/picture.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <map>
#include <numeric>

#include "jsonata/picture_internal.h"

namespace engage::jsonata::picture {
namespace internal {

// ---------------------------------------------------------------------------------------------
// UTF-8

std::u32string DecodeUtf8(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    auto b0 = static_cast<unsigned char>(text[i]);
    int len = b0 < 0x80           ? 1
              : (b0 >> 5) == 0x6  ? 2
              : (b0 >> 4) == 0xE  ? 3
              : (b0 >> 3) == 0x1E ? 4
                                  : 0;
    if (len == 0 || i + len > text.size()) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    char32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
    bool ok = true;
    for (int k = 1; k < len; ++k) {
      auto b = static_cast<unsigned char>(text[i + k]);
      if ((b & 0xC0) != 0x80) {
        ok = false;
        break;
      }
      cp = (cp << 6) | (b & 0x3F);
    }
    if (!ok) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

void AppendUtf8(std::string* out, char32_t cp) { ::engage::AppendUtf8(*out, cp); }

std::string EncodeUtf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t cp : text) AppendUtf8(&out, cp);
  return out;
}

// ---------------------------------------------------------------------------------------------
// JavaScript number semantics

double JsParseInt(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && (text[i] == ' ' || (text[i] >= '\t' && text[i] <= '\r'))) ++i;
  bool negative = false;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    negative = text[i] == '-';
    ++i;
  }
  size_t start = i;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == start) return std::nan("");
  double value = 0;
  // from_chars rounds long digit strings correctly, as parseInt does.
  std::from_chars(text.data() + start, text.data() + i, value);
  return negative ? -value : value;
}

// ---------------------------------------------------------------------------------------------
// Calendar

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// Days from 1970-01-01 by counting whole 400-year eras from 0000-03-01, so that leap days
// fall at the end of each (March-based) year.
int64_t DaysFromCivil(int64_t year, int month, int day) {
  const int64_t y = month <= 2 ? year - 1 : year;
  const int64_t era = FloorDiv(y, 400);
  const int64_t year_of_era = y - era * 400;                           // [0, 399]
  const int64_t month_from_march = month > 2 ? month - 3 : month + 9;  // [0, 11]
  const int64_t day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
  const int64_t day_of_era =
      year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;  // [0, 146096]
  return era * 146097 + day_of_era - 719468;
}

CivilDate CivilFromDays(int64_t days) {
  const int64_t z = days + 719468;
  const int64_t era = FloorDiv(z, 146097);
  const int64_t day_of_era = z - era * 146097;
  const int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const int64_t day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const int64_t mp = (5 * day_of_year + 2) / 153;
  const int day = static_cast<int>(day_of_year - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  const int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
  return {year, month, day};
}

int IsoWeekday(int64_t days) {
  // 1970-01-01 was a Thursday (ISO weekday 4).
  return static_cast<int>((days + 3) - FloorDiv(days + 3, 7) * 7) + 1;
}

// ---------------------------------------------------------------------------------------------
// ASCII case (JSONata's picture vocabulary is English; other scripts are left alone)

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string AsciiUpper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Numbers in English words

namespace {

constexpr std::array<std::string_view, 20> kFew = {
    "Zero",     "One",     "Two",     "Three",     "Four",     "Five",    "Six",
    "Seven",    "Eight",   "Nine",    "Ten",       "Eleven",   "Twelve",  "Thirteen",
    "Fourteen", "Fifteen", "Sixteen", "Seventeen", "Eighteen", "Nineteen"};
constexpr std::array<std::string_view, 20> kOrdinalWords = {
    "Zeroth",     "First",     "Second",    "Third",       "Fourth",     "Fifth",     "Sixth",
    "Seventh",    "Eighth",    "Ninth",     "Tenth",       "Eleventh",   "Twelfth",   "Thirteenth",
    "Fourteenth", "Fifteenth", "Sixteenth", "Seventeenth", "Eighteenth", "Nineteenth"};
constexpr std::array<std::string_view, 8> kDecades = {"Twenty", "Thirty",  "Forty",  "Fifty",
                                                      "Sixty",  "Seventy", "Eighty", "Ninety"};
constexpr std::array<std::string_view, 4> kMagnitudes = {"Thousand", "Million", "Billion",
                                                         "Trillion"};

// Cardinal or ordinal words for a non-negative integer, British style ("one hundred and one",
// "one thousand, two hundred"). `prev` says a larger part precedes, which decides whether the
// remainder is joined with " and " (below one hundred) or ", ". Beyond trillions the largest
// magnitude repeats ("one thousand trillion"), as in jsonata-js.
std::string Words(double num, bool prev, bool ordinal) {
  std::string words;
  if (num <= 19) {
    const auto index = static_cast<size_t>(num);
    words = prev ? " and " : "";
    words += ordinal ? kOrdinalWords[index] : kFew[index];
  } else if (num < 100) {
    const auto tens = static_cast<size_t>(std::floor(num / 10));
    const double remainder = std::fmod(num, 10);
    words = prev ? " and " : "";
    words += kDecades[tens - 2];
    if (remainder > 0) {
      words += "-" + Words(remainder, false, ordinal);
    } else if (ordinal) {
      words.pop_back();  // Twenty -> Twentieth
      words += "ieth";
    }
  } else if (num < 1000) {
    const auto hundreds = static_cast<size_t>(std::floor(num / 100));
    const double remainder = std::fmod(num, 100);
    words = prev ? ", " : "";
    words += std::string(kFew[hundreds]) + " Hundred";
    if (remainder > 0) {
      words += Words(remainder, true, ordinal);
    } else if (ordinal) {
      words += "th";
    }
  } else {
    int magnitude = static_cast<int>(std::floor(std::log10(num) / 3));
    magnitude = std::min(magnitude, static_cast<int>(kMagnitudes.size()));
    double factor = std::pow(10.0, magnitude * 3);
    // log10 rounds up just below a power of ten (log10(999999999999) == 12.0), which would
    // give "zero trillion, ..."; step down instead.
    while (magnitude > 1 && factor > num) {
      --magnitude;
      factor = std::pow(10.0, magnitude * 3);
    }
    const double mantissa = std::floor(num / factor);
    const double remainder = num - mantissa * factor;
    words = prev ? ", " : "";
    words += Words(mantissa, false, false) + " " + std::string(kMagnitudes[magnitude - 1]);
    if (remainder > 0) {
      words += Words(remainder, true, ordinal);
    } else if (ordinal) {
      words += "th";
    }
  }
  return words;
}

struct WordTable {
  std::vector<std::string> alternatives;  // matcher order
  std::map<std::string, double, std::less<>> values;
};

const WordTable& Table() {
  static const WordTable table = [] {
    WordTable t;
    auto add = [&t](std::string word, double value) {
      t.alternatives.push_back(word);
      t.values.emplace(std::move(word), value);
    };
    for (size_t i = 0; i < kFew.size(); ++i) add(AsciiLower(kFew[i]), static_cast<double>(i));
    for (size_t i = 0; i < kOrdinalWords.size(); ++i) {
      add(AsciiLower(kOrdinalWords[i]), static_cast<double>(i));
    }
    for (size_t i = 0; i < kDecades.size(); ++i) {
      std::string word = AsciiLower(kDecades[i]);
      const auto value = static_cast<double>((i + 2) * 10);
      add(word, value);
      add(word.substr(0, word.size() - 1) + "ieth", value);
    }
    add("hundred", 100);
    add("hundredth", 100);
    for (size_t i = 0; i < kMagnitudes.size(); ++i) {
      std::string word = AsciiLower(kMagnitudes[i]);
      const double value = std::pow(10.0, static_cast<double>((i + 1) * 3));
      add(word, value);
      add(word + "th", value);
    }
    return t;
  }();
  return table;
}

bool IsJsSpace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

}  // namespace

const std::vector<std::string>& NumberWordAlternatives() { return Table().alternatives; }

double WordsToNumber(std::string_view text) {
  // Split on ", ", " and " or a single space/hyphen/backslash, trying them in that order at
  // each position (so "x and y" drops the "and"); then fold the values: a value below one
  // hundred adds to the current segment, a larger one multiplies it, and a segment of a
  // thousand or more is closed off ("one thousand, nine hundred" = 1000 + 900).
  std::vector<std::string> parts;
  std::string current;
  size_t i = 0;
  while (i < text.size()) {
    size_t sep = 0;
    if (text[i] == ',' && i + 1 < text.size() && IsJsSpace(text[i + 1])) {
      sep = 2;
    } else if (IsJsSpace(text[i]) && text.substr(i + 1, 3) == "and" && i + 4 < text.size() &&
               IsJsSpace(text[i + 4])) {
      sep = 5;
    } else if (IsJsSpace(text[i]) || text[i] == '-' || text[i] == '\\') {
      sep = 1;
    }
    if (sep > 0) {
      parts.push_back(std::move(current));
      current.clear();
      i += sep;
    } else {
      current.push_back(text[i]);
      ++i;
    }
  }
  parts.push_back(std::move(current));

  const auto& values = Table().values;
  std::vector<double> segments = {0};
  for (const std::string& part : parts) {
    auto it = values.find(part);
    const double value = it == values.end() ? std::nan("") : it->second;
    if (value < 100) {
      double top = segments.back();
      segments.pop_back();
      if (top >= 1000) {
        segments.push_back(top);
        top = 0;
      }
      segments.push_back(top + value);
    } else {
      segments.back() *= value;  // NaN propagates for unknown words
    }
  }
  return std::accumulate(segments.begin(), segments.end(), 0.0);
}

double LettersToNumber(std::u32string_view letters, char32_t a_char) {
  double result = 0;
  const size_t n = letters.size();
  for (size_t i = 0; i < n; ++i) {
    const double digit = static_cast<double>(static_cast<int64_t>(letters[n - i - 1]) - a_char + 1);
    result += digit * std::pow(26.0, static_cast<double>(i));
  }
  return result;
}

double RomanToNumber(std::string_view roman) {
  // Right to left: a numeral smaller than the largest seen so far is subtractive (the I in IV).
  double result = 0;
  double max = 1;
  for (size_t i = roman.size(); i-- > 0;) {
    double value = 0;
    switch (roman[i]) {
      case 'M':
        value = 1000;
        break;
      case 'D':
        value = 500;
        break;
      case 'C':
        value = 100;
        break;
      case 'L':
        value = 50;
        break;
      case 'X':
        value = 10;
        break;
      case 'V':
        value = 5;
        break;
      case 'I':
        value = 1;
        break;
      default:
        return std::nan("");
    }
    if (value < max) {
      result -= value;
    } else {
      max = value;
      result += value;
    }
  }
  return result;
}

double ParseDecimalDigits(std::u32string_view text, const IntegerFormat& format) {
  std::u32string digits(text);
  if (format.ordinal && digits.size() >= 2) digits.resize(digits.size() - 2);
  auto is_separator = [&format](char32_t c) {
    if (format.regular) return c == format.regular_separator.character;
    return std::any_of(format.separators.begin(), format.separators.end(),
                       [c](const GroupingSeparator& s) { return s.character == c; });
  };
  std::string ascii;
  for (char32_t c : digits) {
    if (is_separator(c)) continue;
    if (c >= format.zero && c <= format.zero + 9) c = U'0' + (c - format.zero);
    AppendUtf8(&ascii, c);
  }
  return JsParseInt(ascii);
}

// ---------------------------------------------------------------------------------------------
// fn:format-integer picture analysis

namespace {

// The zero of every Unicode decimal digit family (general category Nd): a decimal digit
// pattern may use any one family, e.g. "###١" formats with Arabic-Indic digits.
constexpr std::array<char32_t, 59> kDigitZeros = {
    0x30,    0x0660,  0x06F0,  0x07C0,  0x0966,  0x09E6,  0x0A66,  0x0AE6,  0x0B66,  0x0BE6,
    0x0C66,  0x0CE6,  0x0D66,  0x0DE6,  0x0E50,  0x0ED0,  0x0F20,  0x1040,  0x1090,  0x17E0,
    0x1810,  0x1946,  0x19D0,  0x1A80,  0x1A90,  0x1B50,  0x1BB0,  0x1C40,  0x1C50,  0xA620,
    0xA8D0,  0xA900,  0xA9D0,  0xA9F0,  0xAA50,  0xABF0,  0xFF10,  0x104A0, 0x11066, 0x110F0,
    0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11C50,
    0x11D50, 0x16A60, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E950};

std::optional<char32_t> DigitFamilyZero(char32_t cp) {
  for (char32_t zero : kDigitZeros) {
    if (cp >= zero && cp <= zero + 9) return zero;
  }
  return std::nullopt;
}

// The interval when all separators are the same character at multiples of one interval
// (e.g. "#,###,##0": ',' every 3 digits), so grouping repeats beyond the picture; else 0.
int RegularInterval(const std::vector<GroupingSeparator>& separators) {
  if (separators.empty()) return 0;
  for (const auto& s : separators) {
    if (s.character != separators[0].character) return 0;
  }
  int factor = 0;
  for (const auto& s : separators) factor = std::gcd(factor, s.position);
  if (factor == 0) return 0;
  for (size_t index = 1; index <= separators.size(); ++index) {
    const int wanted = static_cast<int>(index) * factor;
    if (std::none_of(separators.begin(), separators.end(),
                     [wanted](const GroupingSeparator& s) { return s.position == wanted; })) {
      return 0;
    }
  }
  return factor;
}

}  // namespace

Outcome<IntegerFormat> AnalyseIntegerPicture(std::u32string_view picture) {
  IntegerFormat format;
  std::u32string_view primary = picture;
  const size_t semicolon = picture.rfind(U';');
  if (semicolon != std::u32string_view::npos) {
    primary = picture.substr(0, semicolon);
    const std::u32string_view modifier = picture.substr(semicolon + 1);
    // Only the ordinal modifier changes English output; 'c' (cardinal) is the default and
    // the alternative-form parentheses have no English meaning.
    format.ordinal = !modifier.empty() && modifier[0] == U'o';
  }
  if (primary == U"A" || primary == U"a") {
    format.primary = Primary::kLetters;
    format.letter_case = primary == U"A" ? LetterCase::kUpper : LetterCase::kLower;
    return format;
  }
  if (primary == U"I" || primary == U"i") {
    format.primary = Primary::kRoman;
    format.letter_case = primary == U"I" ? LetterCase::kUpper : LetterCase::kLower;
    return format;
  }
  if (primary == U"W" || primary == U"w" || primary == U"Ww") {
    format.primary = Primary::kWords;
    format.letter_case = primary == U"W"    ? LetterCase::kUpper
                         : primary == U"Ww" ? LetterCase::kTitle
                                            : LetterCase::kLower;
    return format;
  }
  // A decimal digit pattern: scanned right to left so that each grouping separator's position
  // counts the digit signs to its right.
  std::optional<char32_t> zero;
  int position = 0;
  std::vector<GroupingSeparator> separators;
  for (size_t i = primary.size(); i-- > 0;) {
    const char32_t cp = primary[i];
    if (auto family = DigitFamilyZero(cp)) {
      if (zero && *zero != *family) {
        return Error{"D3131", "A decimal digit pattern must not mix digits of different families"};
      }
      zero = family;
      ++format.mandatory_digits;
      ++position;
    } else if (cp == U'#') {
      ++format.optional_digits;
      ++position;
    } else {
      separators.push_back({position, cp});
    }
  }
  if (format.mandatory_digits == 0) {
    // A numbering sequence other than the ones above; none are supported for English.
    format.primary = Primary::kSequence;
    format.token = std::u32string(primary);
    return format;
  }
  format.primary = Primary::kDecimal;
  format.zero = *zero;
  const int interval = RegularInterval(separators);
  if (interval > 0) {
    format.regular = true;
    format.regular_separator = {interval, separators[0].character};
  } else {
    format.separators = std::move(separators);
  }
  return format;
}

Outcome<std::string> FormatIntegerWith(double value, const IntegerFormat& format) {
  if (format.primary == Primary::kSequence) {
    return Error{"D3130", "Formatting or parsing an integer as a sequence starting with '" +
                              EncodeUtf8(format.token) + "' is not supported"};
  }
  if (!std::isfinite(value)) return JsNumberToString(value);
  const bool negative = value < 0;
  value = std::fabs(value);
  std::string text;
  switch (format.primary) {
    case Primary::kLetters: {
      // Spreadsheet-column style: a..z, aa..az, ...
      const char a_char = format.letter_case == LetterCase::kUpper ? 'A' : 'a';
      while (value > 0) {
        text.insert(text.begin(), static_cast<char>(a_char + std::fmod(value - 1, 26)));
        value = std::floor((value - 1) / 26);
      }
      break;
    }
    case Primary::kRoman: {
      // Guard against pathological sizes: each thousand is one more 'M'.
      if (value > 1e7) return Error{"D3130", "The number is too large for roman numerals"};
      static constexpr std::array<std::pair<int, std::string_view>, 13> kNumerals = {{{1000, "m"},
                                                                                      {900, "cm"},
                                                                                      {500, "d"},
                                                                                      {400, "cd"},
                                                                                      {100, "c"},
                                                                                      {90, "xc"},
                                                                                      {50, "l"},
                                                                                      {40, "xl"},
                                                                                      {10, "x"},
                                                                                      {9, "ix"},
                                                                                      {5, "v"},
                                                                                      {4, "iv"},
                                                                                      {1, "i"}}};
      auto remaining = static_cast<int64_t>(value);
      for (const auto& [amount, numeral] : kNumerals) {
        while (remaining >= amount) {
          text += numeral;
          remaining -= amount;
        }
      }
      if (format.letter_case == LetterCase::kUpper) text = AsciiUpper(text);
      break;
    }
    case Primary::kWords:
      text = Words(value, false, format.ordinal);
      if (format.letter_case == LetterCase::kUpper) {
        text = AsciiUpper(text);
      } else if (format.letter_case == LetterCase::kLower) {
        text = AsciiLower(text);
      }
      break;
    case Primary::kDecimal: {
      std::array<char, 400> buf{};
      auto res =
          std::to_chars(buf.data(), buf.data() + buf.size(), value, std::chars_format::fixed, 0);
      std::string ascii(buf.data(), res.ptr - buf.data());
      if (static_cast<int>(ascii.size()) < format.mandatory_digits) {
        ascii.insert(0, format.mandatory_digits - ascii.size(), '0');
      }
      std::u32string digits;
      for (char c : ascii) digits.push_back(format.zero + (c - '0'));
      if (format.regular) {
        const int interval = format.regular_separator.position;
        const int n = (static_cast<int>(digits.size()) - 1) / interval;
        for (int group = n; group > 0; --group) {
          digits.insert(digits.size() - group * interval, 1, format.regular_separator.character);
        }
      } else {
        // Leftmost separator first, so the positions (counted from the right) stay valid.
        // Unlike jsonata-js, a separator with no digit to its left is dropped rather than
        // placed at the front.
        for (auto it = format.separators.rbegin(); it != format.separators.rend(); ++it) {
          if (it->position < static_cast<int>(digits.size())) {
            digits.insert(digits.size() - it->position, 1, it->character);
          }
        }
      }
      text = EncodeUtf8(digits);
      if (format.ordinal) {
        // English suffixes; only ASCII digits are recognised, other families take "th".
        const char32_t last = digits.back();
        const bool teen = digits.size() > 1 && digits[digits.size() - 2] == U'1';
        text += (teen || last < U'1' || last > U'3') ? "th"
                : last == U'1'                       ? "st"
                : last == U'2'                       ? "nd"
                                                     : "rd";
      }
      break;
    }
    case Primary::kSequence:
      break;  // handled above
  }
  return negative ? "-" + text : text;
}

}  // namespace internal

using internal::AnalyseIntegerPicture;
using internal::DecodeUtf8;
using internal::Primary;

Outcome<std::string> FormatInteger(double value, std::string_view picture) {
  auto format = AnalyseIntegerPicture(DecodeUtf8(picture));
  if (!format.ok()) return format.error();
  return internal::FormatIntegerWith(std::floor(value), *format);
}

Outcome<std::optional<double>> ParseInteger(std::string_view value, std::string_view picture) {
  auto format = AnalyseIntegerPicture(DecodeUtf8(picture));
  if (!format.ok()) return format.error();
  const bool upper = format->letter_case == internal::LetterCase::kUpper;
  double result = std::nan("");
  switch (format->primary) {
    case Primary::kLetters:
      result = internal::LettersToNumber(DecodeUtf8(value), upper ? U'A' : U'a');
      break;
    case Primary::kRoman:
      result = internal::RomanToNumber(upper ? std::string(value) : internal::AsciiUpper(value));
      break;
    case Primary::kWords:
      result = internal::WordsToNumber(internal::AsciiLower(value));
      break;
    case Primary::kDecimal:
      result = internal::ParseDecimalDigits(DecodeUtf8(value), *format);
      break;
    case Primary::kSequence:
      return Error{"D3130", "Formatting or parsing an integer as a sequence starting with '" +
                                std::string(picture) + "' is not supported"};
  }
  // jsonata-js yields NaN for text that does not fit the picture; JSON has no NaN, so this
  // is reported as no value.
  if (std::isnan(result)) return std::optional<double>();
  return std::optional<double>(result);
}

}  // namespace engage::jsonata::picture
