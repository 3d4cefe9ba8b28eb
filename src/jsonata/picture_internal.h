// Internals shared by the picture-string translation units (picture.cc, picture_number.cc,
// picture_datetime.cc). Not part of the public API.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engage/jsonata/jsonata.h"
#include "jsonata/text_internal.h"

namespace engage::jsonata::picture::internal {

// ---- UTF-8 <-> code points. Pictures may hold any Unicode character (digit families, '‰'),
// so analysis works on code points; invalid bytes decode to U+FFFD rather than failing.
std::u32string DecodeUtf8(std::string_view text);
void AppendUtf8(std::string* out, char32_t cp);
std::string EncodeUtf8(std::u32string_view text);

std::string AsciiLower(std::string_view s);
std::string AsciiUpper(std::string_view s);

// ---- JavaScript number semantics that the reference implementation's output depends on.
// Number.prototype.toString(): shortest round-trip digits, exponent form outside [1e-7, 1e21).
using ::engage::jsonata::internal::JsNumberToString;
// parseInt(text, 10): optional leading whitespace and sign, then ASCII digits; NaN when none.
double JsParseInt(std::string_view text);

// ---- fn:format-integer picture analysis (F&O 3.1 section 4.6.1).
enum class Primary { kDecimal, kLetters, kRoman, kWords, kSequence };
enum class LetterCase { kLower, kUpper, kTitle };

struct GroupingSeparator {
  int position = 0;  // digit positions to the right of the separator
  char32_t character = 0;
};

struct IntegerFormat {
  Primary primary = Primary::kDecimal;
  LetterCase letter_case = LetterCase::kLower;
  bool ordinal = false;
  // Decimal digit patterns only.
  char32_t zero = U'0';  // zero of the digit family used
  int mandatory_digits = 0;
  int optional_digits = 0;
  bool regular = false;  // one separator repeated at a fixed interval
  GroupingSeparator regular_separator;
  std::vector<GroupingSeparator> separators;  // irregular grouping, rightmost first
  std::u32string token;                       // the unsupported token (kSequence)
  // Date/time parsing: exact digit count when the next marker follows without a literal.
  int parse_width = 0;
};

// Errors: D3131 when a decimal digit pattern mixes digit families. Unknown tokens yield
// Primary::kSequence; formatting or parsing with one fails with D3130.
Outcome<IntegerFormat> AnalyseIntegerPicture(std::u32string_view picture);

// Formats `value` (already an integer) with an analysed picture. Errors: D3130.
Outcome<std::string> FormatIntegerWith(double value, const IntegerFormat& format);

// Inverse conversions used by ParseInteger and by ToMillis; NaN when the text does not parse.
double LettersToNumber(std::u32string_view letters, char32_t a_char);
double RomanToNumber(std::string_view roman_upper);
double WordsToNumber(std::string_view lower_text);
// Decimal digits in `format`'s family with its grouping separators and ordinal suffix.
double ParseDecimalDigits(std::u32string_view text, const IntegerFormat& format);

// The English number words the parser accepts, in the order the reference implementation's
// matcher tries them (the order matters when one word is a prefix of another: seven/seventeen).
const std::vector<std::string>& NumberWordAlternatives();

// ---- Proleptic Gregorian calendar arithmetic on day numbers (days since 1970-01-01).
int64_t DaysFromCivil(int64_t year, int month, int day);  // month 1..12
struct CivilDate {
  int64_t year;
  int month;  // 1..12
  int day;    // 1..31
};
CivilDate CivilFromDays(int64_t days);
int IsoWeekday(int64_t days);  // 1 = Monday .. 7 = Sunday
int64_t FloorDiv(int64_t a, int64_t b);

}  // namespace engage::jsonata::picture::internal
