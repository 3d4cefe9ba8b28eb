// fn:format-dateTime (F&O 3.1 section 9.8) and its inverse for JSONata's $fromMillis and
// $toMillis. See picture.h.
//
// All calendar arithmetic is done here on day numbers (proleptic Gregorian, UTC), never with
// the C library's time functions, so neither the machine's time zone nor its locale matters.
// Component semantics follow jsonata-js: ISO weeks for [W]/[w] (and its [X]/[x] extension for
// the week-numbering year/month), English names, am/pm, "ISO" for [C] and [E].
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <map>

#include "jsonata/picture.h"
#include "jsonata/picture_internal.h"

namespace engage::jsonata::picture {
namespace {

using internal::AnalyseIntegerPicture;
using internal::AsciiLower;
using internal::AsciiUpper;
using internal::DaysFromCivil;
using internal::DecodeUtf8;
using internal::EncodeUtf8;
using internal::FloorDiv;
using internal::IntegerFormat;
using internal::JsParseInt;
using internal::Primary;

constexpr int64_t kMillisPerDay = 86400000;
// ECMAScript's time value range; beyond it jsonata-js has no date at all.
constexpr double kMaxTimeValue = 8.64e15;

constexpr std::array<std::string_view, 12> kMonths = {
    "January", "February", "March",     "April",   "May",      "June",
    "July",    "August",   "September", "October", "November", "December"};
constexpr std::array<std::string_view, 8> kDays = {"",         "Monday", "Tuesday",  "Wednesday",
                                                   "Thursday", "Friday", "Saturday", "Sunday"};

// ---------------------------------------------------------------------------------------------
// Picture analysis (9.8.4.1)

enum class Names { kNone, kLower, kUpper, kTitle };

struct Marker {
  char32_t component = 0;
  std::u32string presentation1;
  char32_t presentation2 = 0;  // 'a', 't', 'c' or 'o'; 0 when absent
  std::optional<int> min_width;
  std::optional<int> max_width;
  Names names = Names::kNone;
  std::optional<IntegerFormat> integer_format;
  int year_digits = -1;  // [Y]: keep only this many low-order digits; -1 keeps all
};

struct Part {
  bool is_literal = false;
  std::string literal;  // UTF-8
  Marker marker;
};

std::optional<std::u32string_view> DefaultPresentation(char32_t component) {
  switch (component) {
    case U'Y':
    case U'M':
    case U'D':
    case U'd':
    case U'W':
    case U'w':
    case U'X':
    case U'x':
    case U'H':
    case U'h':
    case U'f':
      return U"1";
    case U'F':
    case U'P':
    case U'C':
    case U'E':
      return U"n";
    case U'm':
    case U's':
      return U"01";
    case U'Z':
    case U'z':
      return U"01:01";
    default:
      return std::nullopt;
  }
}

bool IsIntegerComponent(char32_t c) {
  return std::u32string_view(U"YMDdFWwXxHhmsf").find(c) != std::u32string_view::npos;
}

std::optional<int> ParseWidth(std::u32string_view text) {
  if (text.empty() || text == U"*") return std::nullopt;
  const double value = JsParseInt(EncodeUtf8(text));
  if (std::isnan(value) || value < 0 || value > 1000) return std::nullopt;
  return static_cast<int>(value);
}

bool IsSpace(char32_t c) {
  return c == U' ' || (c >= U'\t' && c <= U'\r') || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000 || c == 0xFEFF;
}

Outcome<Marker> AnalyseMarker(std::u32string_view raw) {
  // Whitespace inside a variable marker is insignificant.
  std::u32string text;
  for (char32_t c : raw) {
    if (!IsSpace(c)) text.push_back(c);
  }
  Marker m;
  m.component = text.empty() ? 0 : text[0];
  std::u32string_view presentation;
  const size_t comma = text.rfind(U',');
  if (comma != std::u32string::npos) {
    const std::u32string_view width = std::u32string_view(text).substr(comma + 1);
    const size_t dash = width.find(U'-');
    m.min_width = ParseWidth(width.substr(0, dash));
    if (dash != std::u32string_view::npos) m.max_width = ParseWidth(width.substr(dash + 1));
    if (comma > 0) presentation = std::u32string_view(text).substr(1, comma - 1);
  } else if (!text.empty()) {
    presentation = std::u32string_view(text).substr(1);
  }
  if (presentation.size() == 1) {
    m.presentation1 = std::u32string(presentation);
  } else if (presentation.size() > 1) {
    const char32_t last = presentation.back();
    if (std::u32string_view(U"atco").find(last) != std::u32string_view::npos) {
      // Second presentation modifier: 'o' ordinal; 'c' cardinal is the default and the
      // alphabetic/traditional choice ('a'/'t') has no English meaning, except that [Z..t]
      // writes a zero offset as "Z".
      m.presentation2 = last;
      m.presentation1 = std::u32string(presentation.substr(0, presentation.size() - 1));
    } else {
      m.presentation1 = std::u32string(presentation);
    }
  } else if (auto preset = DefaultPresentation(m.component)) {
    m.presentation1 = std::u32string(*preset);
  } else {
    return Error{"D3132", "Unknown component specifier '" + EncodeUtf8(text.substr(0, 1)) +
                              "' in date/time picture string"};
  }
  if (m.presentation1[0] == U'n') {
    m.names = Names::kLower;
  } else if (m.presentation1[0] == U'N') {
    m.names =
        m.presentation1.size() > 1 && m.presentation1[1] == U'n' ? Names::kTitle : Names::kUpper;
  } else if (IsIntegerComponent(m.component)) {
    std::u32string pattern = m.presentation1;
    if (m.presentation2 != 0) {
      pattern += U';';
      pattern += m.presentation2;
    }
    auto format = AnalyseIntegerPicture(pattern);
    if (!format.ok()) return format.error();
    m.integer_format = std::move(*format);
    IntegerFormat& f = *m.integer_format;
    if (f.primary == Primary::kDecimal && m.min_width && f.mandatory_digits < *m.min_width) {
      f.mandatory_digits = *m.min_width;
    }
    if (m.component == U'Y') {
      // 9.8.4.4: a two-digit picture or maximum width means a two-digit year, and so on.
      if (m.max_width) {
        m.year_digits = *m.max_width;
        f.mandatory_digits = *m.max_width;
      } else if (f.mandatory_digits + f.optional_digits >= 2) {
        m.year_digits = f.mandatory_digits + f.optional_digits;
      }
    }
  }
  if (m.component == U'Z' || m.component == U'z') {
    auto format = AnalyseIntegerPicture(m.presentation1);
    if (!format.ok()) return format.error();
    m.integer_format = std::move(*format);
  }
  return m;
}

Outcome<std::vector<Part>> AnalyseDateTimePicture(std::u32string_view picture) {
  std::vector<Part> parts;
  auto add_literal = [&parts, picture](size_t start, size_t end) {
    if (end <= start) return;
    // "]]" stands for "]" in literal text.
    std::u32string text;
    const std::u32string_view raw = picture.substr(start, end - start);
    for (size_t i = 0; i < raw.size(); ++i) {
      text.push_back(raw[i]);
      if (raw[i] == U']' && i + 1 < raw.size() && raw[i + 1] == U']') ++i;
    }
    Part part;
    part.is_literal = true;
    part.literal = EncodeUtf8(text);
    parts.push_back(std::move(part));
  };
  size_t start = 0;
  size_t pos = 0;
  while (pos < picture.size()) {
    if (picture[pos] == U'[') {
      if (pos + 1 < picture.size() && picture[pos + 1] == U'[') {  // "[[" is a literal '['
        add_literal(start, pos);
        Part part;
        part.is_literal = true;
        part.literal = "[";
        parts.push_back(std::move(part));
        pos += 2;
        start = pos;
        continue;
      }
      add_literal(start, pos);
      const size_t close = picture.find(U']', pos);
      if (close == std::u32string_view::npos) {
        return Error{"D3135", "No matching closing bracket ']' in date/time picture string"};
      }
      auto marker = AnalyseMarker(picture.substr(pos + 1, close - pos - 1));
      if (!marker.ok()) return marker.error();
      // Two numeric markers with nothing between them ("[Y0001][M01]") can only be told apart
      // when parsing if the first has a fixed width.
      if (marker->integer_format && IsIntegerComponent(marker->component) &&
          marker->names == Names::kNone && !parts.empty() && parts.back().marker.integer_format) {
        IntegerFormat& previous = *parts.back().marker.integer_format;
        previous.parse_width = previous.mandatory_digits;
      }
      Part part;
      part.marker = std::move(*marker);
      parts.push_back(std::move(part));
      pos = close;
      start = close + 1;
    }
    ++pos;
  }
  add_literal(start, pos);
  return parts;
}

// ---------------------------------------------------------------------------------------------
// Date/time components

struct DateTime {
  int64_t time_ms;  // milliseconds since the epoch, already shifted into the wanted zone
  int64_t days;
  internal::CivilDate date;
  int64_t ms_of_day;
};

DateTime MakeDateTime(int64_t time_ms) {
  DateTime dt;
  dt.time_ms = time_ms;
  dt.days = FloorDiv(time_ms, kMillisPerDay);
  dt.ms_of_day = time_ms - dt.days * kMillisPerDay;
  dt.date = internal::CivilFromDays(dt.days);
  return dt;
}

// Day number of the Monday starting week 1 of a year or month: ISO 8601 puts week 1 around the
// first Thursday, and F&O applies the same rule to months. `month0` may overflow the year.
int64_t StartOfFirstWeek(int64_t year, int64_t month0) {
  const int64_t y = year + FloorDiv(month0, 12);
  const int m = static_cast<int>(month0 - FloorDiv(month0, 12) * 12) + 1;
  const int64_t first = DaysFromCivil(y, m, 1);
  const int weekday = internal::IsoWeekday(first);
  return weekday > 4 ? first + (8 - weekday) : first - (weekday - 1);
}

double WeekNumber(int64_t today, int64_t start, int64_t next_start, int64_t previous_start,
                  double last_full_week) {
  double week = static_cast<double>(today - start) / 7 + 1;
  if (week > last_full_week) {
    if (today >= next_start) week = 1;
  } else if (week < 1) {
    week = static_cast<double>(today - previous_start) / 7 + 1;
  }
  return std::floor(week);
}

// The numeric value of a component; std::nullopt for the ones that are not numbers.
std::optional<double> ComponentValue(const DateTime& dt, char32_t component) {
  const int64_t year = dt.date.year;
  const int64_t month0 = dt.date.month - 1;
  switch (component) {
    case U'Y':
      return static_cast<double>(year);
    case U'M':
      return dt.date.month;
    case U'D':
      return dt.date.day;
    case U'd':
      return static_cast<double>(dt.days - DaysFromCivil(year, 1, 1) + 1);
    case U'F':
      return internal::IsoWeekday(dt.days);
    case U'W':
      return WeekNumber(dt.days, StartOfFirstWeek(year, 0), StartOfFirstWeek(year + 1, 0),
                        StartOfFirstWeek(year - 1, 0), 52);
    case U'w':
      return WeekNumber(dt.days, StartOfFirstWeek(year, month0), StartOfFirstWeek(year, month0 + 1),
                        StartOfFirstWeek(year, month0 - 1), 4);
    case U'X': {  // the ISO week-numbering year
      if (dt.time_ms < StartOfFirstWeek(year, 0) * kMillisPerDay) return year - 1.0;
      if (dt.time_ms >= StartOfFirstWeek(year + 1, 0) * kMillisPerDay) return year + 1.0;
      return static_cast<double>(year);
    }
    case U'x': {  // the month a week-of-month belongs to
      if (dt.time_ms < StartOfFirstWeek(year, month0) * kMillisPerDay) {
        return static_cast<double>(month0 == 0 ? 12 : month0);
      }
      if (dt.time_ms >= StartOfFirstWeek(year, month0 + 1) * kMillisPerDay) {
        return static_cast<double>(month0 == 11 ? 1 : month0 + 2);
      }
      return static_cast<double>(dt.date.month);
    }
    case U'H':
      return static_cast<double>(dt.ms_of_day / 3600000);
    case U'h': {
      const int64_t h = dt.ms_of_day / 3600000 % 12;
      return static_cast<double>(h == 0 ? 12 : h);
    }
    case U'm':
      return static_cast<double>(dt.ms_of_day / 60000 % 60);
    case U's':
      return static_cast<double>(dt.ms_of_day / 1000 % 60);
    case U'f':
      return static_cast<double>(dt.ms_of_day % 1000);
    default:
      return std::nullopt;
  }
}

std::string ApplyNameCase(std::string_view name, Names names) {
  if (names == Names::kUpper) return AsciiUpper(name);
  if (names == Names::kLower) return AsciiLower(name);
  return std::string(name);
}

Outcome<std::string> FormatZone(const Marker& m, int offset_hours, int offset_minutes) {
  const IntegerFormat& format = *m.integer_format;
  const int offset = offset_hours * 100 + offset_minutes;  // e.g. -530 for -05:30
  std::string text;
  if (format.regular) {
    auto out = internal::FormatIntegerWith(offset, format);  // [Z01:01] -> 05:30
    if (!out.ok()) return out.error();
    text = std::move(*out);
  } else if (format.primary == Primary::kDecimal &&
             (format.mandatory_digits == 1 || format.mandatory_digits == 2)) {
    auto out = internal::FormatIntegerWith(offset_hours, format);  // [Z0] -> 5 or 5:30
    if (!out.ok()) return out.error();
    text = std::move(*out);
    if (offset_minutes != 0) {
      const int minutes = std::abs(offset_minutes);
      text += ":" + std::string(minutes < 10 ? "0" : "") + std::to_string(minutes);
    }
  } else if (format.primary == Primary::kDecimal &&
             (format.mandatory_digits == 3 || format.mandatory_digits == 4)) {
    auto out = internal::FormatIntegerWith(offset, format);  // [Z0000] -> 0530
    if (!out.ok()) return out.error();
    text = std::move(*out);
  } else if (format.primary == Primary::kDecimal) {
    return Error{"D3134", "The time zone format must have one to four digits"};
  } else {
    auto out = internal::FormatIntegerWith(offset, format);  // D3130 for non-decimal formats
    if (!out.ok()) return out.error();
    text = std::move(*out);
  }
  if (offset < 0 && (text.empty() || text[0] != '-')) text.insert(0, "-");  // e.g. -00:30
  if (offset >= 0) text.insert(0, "+");
  if (m.component == U'z') text.insert(0, "GMT");
  if (offset == 0 && m.presentation2 == U't') text = "Z";
  return text;
}

Outcome<std::string> FormatMarker(const DateTime& dt, const Marker& m, int offset_hours,
                                  int offset_minutes) {
  const char32_t c = m.component;
  if (c == U'Z' || c == U'z') return FormatZone(m, offset_hours, offset_minutes);
  if (c == U'P') {
    // Lower case unless upper case is asked for ([PN] -> "AM"), as jsonata-js does.
    const bool pm = dt.ms_of_day >= 12 * 3600000;
    if (m.names == Names::kUpper) return std::string(pm ? "PM" : "AM");
    return std::string(pm ? "pm" : "am");
  }
  if (c == U'C' || c == U'E') return std::string("ISO");  // calendar and era
  std::optional<double> value = ComponentValue(dt, c);
  if (!value) {
    return Error{"D3132", "Unknown component specifier '" + EncodeUtf8(std::u32string(1, c)) +
                              "' in date/time picture string"};
  }
  if (c == U'Y' && m.year_digits >= 0 && m.year_digits < 19) {
    *value = std::fmod(*value, std::pow(10.0, m.year_digits));
  }
  if (m.names != Names::kNone) {
    std::string_view name;
    if (c == U'M' || c == U'x') {
      name = kMonths[static_cast<size_t>(*value) - 1];
    } else if (c == U'F') {
      name = kDays[static_cast<size_t>(*value)];
    } else {
      return Error{"D3133", "The '" + EncodeUtf8(std::u32string(1, c)) +
                                "' component of a date/time cannot be written as a name"};
    }
    std::string text = ApplyNameCase(name, m.names);
    if (m.max_width && static_cast<int>(text.size()) > *m.max_width) text.resize(*m.max_width);
    return text;
  }
  return internal::FormatIntegerWith(*value, *m.integer_format);
}

// ---------------------------------------------------------------------------------------------
// Parsing: a backtracking matcher equivalent to the anchored, case-insensitive regular
// expression jsonata-js builds from the picture (one group per part), so that ambiguous
// input ("seventeen" after "seven") resolves the same way.

enum class MatchKind { kLiteral, kDigits, kLetters, kRoman, kWords, kName, kTimezone };

struct MatchPart {
  MatchKind kind = MatchKind::kLiteral;
  std::string literal;         // kLiteral
  int width = 0;               // kDigits: exact digit count, 0 for one or more
  bool ordinal = false;        // kDigits: followed by st/nd/rd/th
  bool gmt = false;            // kTimezone: "GMT" prefix ([z])
  std::string zone_separator;  // kTimezone: between hours and minutes, if any
  const Marker* marker = nullptr;
};

char FoldCase(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool MatchesAt(std::string_view text, size_t pos, std::string_view word) {
  if (pos + word.size() > text.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    if (FoldCase(text[pos + i]) != FoldCase(word[i])) return false;
  }
  return true;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsRomanLetter(char c) {
  return std::string_view("MDCLXVImdclxvi").find(c) != std::string_view::npos;
}

size_t RunLength(std::string_view text, size_t pos, bool (*pred)(char)) {
  size_t end = pos;
  while (end < text.size() && pred(text[end])) ++end;
  return end - pos;
}

bool OrdinalSuffixAt(std::string_view text, size_t pos) {
  return MatchesAt(text, pos, "th") || MatchesAt(text, pos, "st") || MatchesAt(text, pos, "nd") ||
         MatchesAt(text, pos, "rd");
}

class Matcher {
 public:
  Matcher(std::string_view text, const std::vector<MatchPart>& parts)
      : text_(text), parts_(parts), spans_(parts.size()) {}

  bool Match() { return MatchFrom(0, 0); }
  std::string_view Captured(size_t index) const {
    return text_.substr(spans_[index].first, spans_[index].second - spans_[index].first);
  }

 private:
  bool MatchFrom(size_t index, size_t pos) {
    // A bound on the work for pathological inputs; real timestamps need a handful of steps.
    if (++steps_ > 200000) return false;
    if (index == parts_.size()) return pos == text_.size();
    for (size_t end : Candidates(parts_[index], pos)) {
      spans_[index] = {pos, end};
      if (MatchFrom(index + 1, end)) return true;
    }
    return false;
  }

  // End positions the part can match at `pos`, in the order a backtracking regex tries them
  // (greedy: longest first).
  std::vector<size_t> Candidates(const MatchPart& part, size_t pos) const {
    std::vector<size_t> ends;
    auto greedy = [&ends, pos](size_t run) {
      for (size_t k = run; k >= 1; --k) ends.push_back(pos + k);
    };
    switch (part.kind) {
      case MatchKind::kLiteral:
        if (MatchesAt(text_, pos, part.literal)) ends.push_back(pos + part.literal.size());
        break;
      case MatchKind::kDigits: {
        const size_t run = RunLength(text_, pos, IsDigit);
        const size_t min_k = part.width > 0 ? static_cast<size_t>(part.width) : 1;
        const size_t max_k = part.width > 0 ? std::min(run, min_k) : run;
        for (size_t k = max_k; k >= min_k && k >= 1; --k) {
          if (!part.ordinal) {
            ends.push_back(pos + k);
          } else if (OrdinalSuffixAt(text_, pos + k)) {
            ends.push_back(pos + k + 2);
          }
        }
        break;
      }
      case MatchKind::kLetters:
      case MatchKind::kName:
        greedy(RunLength(text_, pos, IsLetter));
        break;
      case MatchKind::kRoman:
        greedy(RunLength(text_, pos, IsRomanLetter));
        break;
      case MatchKind::kWords: {
        std::vector<bool> expanded(text_.size() + 1, false);
        WordEnds(pos, &ends, &expanded);
        break;
      }
      case MatchKind::kTimezone: {
        size_t p = pos;
        if (part.gmt) {
          if (!MatchesAt(text_, p, "GMT")) break;
          p += 3;
        }
        if (p >= text_.size() || (text_[p] != '+' && text_[p] != '-')) break;
        ++p;
        for (size_t k1 = RunLength(text_, p, IsDigit); k1 >= 1; --k1) {
          const size_t q = p + k1;
          if (part.zone_separator.empty()) {
            ends.push_back(q);
          } else if (text_.compare(q, part.zone_separator.size(), part.zone_separator) == 0) {
            const size_t r = q + part.zone_separator.size();
            for (size_t k2 = RunLength(text_, r, IsDigit); k2 >= 1; --k2) ends.push_back(r + k2);
          }
        }
        break;
      }
    }
    return ends;
  }

  // One or more of: a number word, "and", '-', ',' or ' '. Repetition is greedy, each
  // repetition tries the alternatives in order; duplicate ends are dropped as they cannot
  // change the outcome.
  void WordEnds(size_t pos, std::vector<size_t>* ends, std::vector<bool>* expanded) const {
    auto step = [&](size_t next) {
      if (!(*expanded)[next]) {
        (*expanded)[next] = true;
        WordEnds(next, ends, expanded);
      }
      if (std::find(ends->begin(), ends->end(), next) == ends->end()) ends->push_back(next);
    };
    for (const std::string& word : internal::NumberWordAlternatives()) {
      if (MatchesAt(text_, pos, word)) step(pos + word.size());
    }
    if (MatchesAt(text_, pos, "and")) step(pos + 3);
    if (pos < text_.size() && (text_[pos] == '-' || text_[pos] == ',' || text_[pos] == ' ')) {
      step(pos + 1);
    }
  }

  std::string_view text_;
  const std::vector<MatchPart>& parts_;
  std::vector<std::pair<size_t, size_t>> spans_;
  int64_t steps_ = 0;
};

Outcome<std::vector<MatchPart>> BuildMatcher(const std::vector<Part>& parts) {
  std::vector<MatchPart> out;
  for (const Part& part : parts) {
    MatchPart mp;
    if (part.is_literal) {
      mp.kind = MatchKind::kLiteral;
      mp.literal = part.literal;
      out.push_back(std::move(mp));
      continue;
    }
    const Marker& m = part.marker;
    mp.marker = &m;
    if (m.component == U'Z' || m.component == U'z') {
      mp.kind = MatchKind::kTimezone;
      mp.gmt = m.component == U'z';
      if (m.integer_format->regular) {
        internal::AppendUtf8(&mp.zone_separator, m.integer_format->regular_separator.character);
      }
    } else if (m.integer_format) {
      const IntegerFormat& f = *m.integer_format;
      switch (f.primary) {
        case Primary::kLetters:
          mp.kind = MatchKind::kLetters;
          break;
        case Primary::kRoman:
          mp.kind = MatchKind::kRoman;
          break;
        case Primary::kWords:
          mp.kind = MatchKind::kWords;
          break;
        case Primary::kDecimal:
          mp.kind = MatchKind::kDigits;
          mp.width = f.parse_width;
          mp.ordinal = f.ordinal;
          break;
        case Primary::kSequence:
          return Error{"D3130", "Formatting or parsing an integer as a sequence starting with '" +
                                    EncodeUtf8(f.token) + "' is not supported"};
      }
    } else if (m.component == U'M' || m.component == U'x' || m.component == U'F' ||
               m.component == U'P') {
      mp.kind = MatchKind::kName;
    } else {
      return Error{"D3133", "The '" + EncodeUtf8(std::u32string(1, m.component)) +
                                "' component of a date/time cannot be parsed as a name"};
    }
    out.push_back(std::move(mp));
  }
  return out;
}

// The value a matched part stands for; nullopt when a name is not recognised (jsonata-js
// then treats the component as absent).
std::optional<double> ParsePart(const MatchPart& part, std::string_view text) {
  const Marker& m = *part.marker;
  switch (part.kind) {
    case MatchKind::kLiteral:
      return std::nullopt;
    case MatchKind::kDigits: {
      if (m.component == U'f') {
        // Fractional seconds are a decimal fraction: ".5" is 500 ms, ".01987" is 19 ms.
        std::string digits(text.substr(0, text.size() - (part.ordinal ? 2 : 0)));
        digits.resize(3, '0');
        return JsParseInt(digits);
      }
      return internal::ParseDecimalDigits(DecodeUtf8(text), *m.integer_format);
    }
    case MatchKind::kLetters: {
      const bool upper = m.integer_format->letter_case == internal::LetterCase::kUpper;
      return internal::LettersToNumber(DecodeUtf8(text), upper ? U'A' : U'a');
    }
    case MatchKind::kRoman: {
      const bool upper = m.integer_format->letter_case == internal::LetterCase::kUpper;
      return internal::RomanToNumber(upper ? std::string(text) : AsciiUpper(text));
    }
    case MatchKind::kWords:
      return internal::WordsToNumber(AsciiLower(text));
    case MatchKind::kName: {
      // Names are looked up exactly as jsonata-js spells them (with [MNn,3-3] the first three
      // letters), so "March" matches but "MARCH" is not recognised.
      auto lookup = [&](auto begin, auto end, int first_value) -> std::optional<double> {
        int value = first_value;
        for (auto it = begin; it != end; ++it, ++value) {
          std::string_view name = *it;
          if (m.max_width && *m.max_width > 0 && static_cast<int>(name.size()) > *m.max_width) {
            name = name.substr(0, *m.max_width);
          }
          if (name == text) return value;
        }
        return std::nullopt;
      };
      if (m.component == U'M' || m.component == U'x') {
        return lookup(kMonths.begin(), kMonths.end(), 1);
      }
      if (m.component == U'F') return lookup(kDays.begin() + 1, kDays.end(), 1);
      if (text == "am" || text == "AM") return 0;
      if (text == "pm" || text == "PM") return 1;
      return std::nullopt;
    }
    case MatchKind::kTimezone: {
      std::string_view zone = part.gmt ? text.substr(3) : text;
      const bool negative = zone[0] == '-';
      double hours = 0;
      double minutes = 0;
      if (!part.zone_separator.empty()) {
        const size_t sep = zone.find(part.zone_separator);
        hours = JsParseInt(zone.substr(0, sep));
        minutes = JsParseInt(zone.substr(sep + part.zone_separator.size()));
      } else if (zone.size() - 1 <= 2) {
        hours = JsParseInt(zone);
      } else {
        hours = JsParseInt(zone.substr(0, 3));
        minutes = JsParseInt(zone.substr(3));
      }
      // The minutes share the sign of the hours (-05:30 is 330 minutes behind UTC).
      return hours * 60 + (negative ? -minutes : minutes);
    }
  }
  return std::nullopt;
}

// Date.UTC(year, month0, day, hours, minutes, seconds, ms): fields may overflow into the next
// larger unit; NaN when any is not finite or the result is out of range. Like Date.UTC, years
// 0..99 mean 1900..1999.
double JsDateUtc(double year, double month0, double day, double hours, double minutes,
                 double seconds, double ms) {
  for (double v : {year, month0, day, hours, minutes, seconds, ms}) {
    if (!std::isfinite(v) || std::fabs(v) > 1e15) return std::nan("");
  }
  double y = std::trunc(year);
  if (y >= 0 && y <= 99) y += 1900;
  const double m = std::trunc(month0);
  const double year_total = y + std::floor(m / 12);
  if (std::fabs(year_total) > 400000) return std::nan("");
  const int month = static_cast<int>(m - std::floor(m / 12) * 12) + 1;
  const double days =
      static_cast<double>(DaysFromCivil(static_cast<int64_t>(year_total), month, 1)) +
      std::trunc(day) - 1;
  const double t = days * kMillisPerDay + std::trunc(hours) * 3600000 +
                   std::trunc(minutes) * 60000 + std::trunc(seconds) * 1000 + std::trunc(ms);
  if (std::fabs(t) > kMaxTimeValue) return std::nan("");
  return t;
}

using Components = std::map<char32_t, std::optional<double>>;

bool Truthy(const Components& c, char32_t key) {
  auto it = c.find(key);
  return it != c.end() && it->second && *it->second != 0 && !std::isnan(*it->second);
}

bool Defined(const Components& c, char32_t key) {
  auto it = c.find(key);
  return it != c.end() && it->second.has_value();
}

Outcome<std::optional<double>> ParseDateTime(std::string_view timestamp, std::string_view picture,
                                             double now_millis) {
  auto parts = AnalyseDateTimePicture(DecodeUtf8(picture));
  if (!parts.ok()) return parts.error();
  auto match_parts = BuildMatcher(*parts);
  if (!match_parts.ok()) return match_parts.error();
  Matcher matcher(timestamp, *match_parts);
  if (!matcher.Match()) return std::optional<double>();

  Components components;
  for (size_t i = 0; i < match_parts->size(); ++i) {
    const MatchPart& part = (*match_parts)[i];
    if (part.kind == MatchKind::kLiteral) continue;
    components[part.marker->component] = ParsePart(part, matcher.Captured(i));
  }
  if (components.empty()) return std::optional<double>();  // the picture has no markers

  // Which combination of components specifies the date and the time:
  //   date A {Y M D}, B {Y d}, C {X x w F}, D {X W F}; time A {H m s f}, B {P h m s f}.
  // A combination applies when no component outside it was given and at least one inside was
  // (F is ignored for A and B); as in jsonata-js, a zero value counts as not given here.
  auto mask_of = [&components](std::u32string_view keys) {
    unsigned mask = 0;
    for (char32_t k : keys) mask = (mask << 1) | (Truthy(components, k) ? 1 : 0);
    return mask;
  };
  auto is_type = [](unsigned mask, unsigned type) { return (~type & mask) == 0 && (type & mask); };
  const unsigned date_mask = mask_of(U"YXMxWwdD");
  const bool date_a = is_type(date_mask, 0b10100001);
  const bool date_b = !date_a && is_type(date_mask, 0b10000010);
  const bool date_c = is_type(date_mask, 0b01010100);
  const bool date_d = !date_c && is_type(date_mask, 0b01001000);
  const unsigned time_mask = mask_of(U"PHhmsf");
  const bool time_a = is_type(time_mask, 0b010111);
  const bool time_b = !time_a && is_type(time_mask, 0b101111);

  // From most to least significant: components before the first given one come from "now",
  // components after the last given one default to their minimum, and a gap between given
  // components is an error. (For {Y d} jsonata-js walks Y and D, which gives the same result.)
  const std::u32string date_order = date_b ? U"YD" : date_c ? U"XxwF" : date_d ? U"XWF" : U"YMD";
  const std::u32string order = date_order + (time_b ? U"Phmsf" : U"Hmsf");
  const DateTime now = MakeDateTime(
      std::fabs(now_millis) <= kMaxTimeValue ? static_cast<int64_t>(std::trunc(now_millis)) : 0);
  bool start_specified = false;
  bool end_specified = false;
  for (char32_t part : order) {
    if (!Defined(components, part)) {
      if (start_specified) {
        components[part] = (part == U'M' || part == U'D' || part == U'd') ? 1 : 0;
        end_specified = true;
      } else {
        // "now" supplies the leading components; its am/pm marker never counts as pm.
        components[part] = part == U'P' ? 0 : ComponentValue(now, part).value_or(0);
      }
    } else {
      start_specified = true;
      if (end_specified) {
        return Error{"D3136",
                     "The date/time picture string is missing components needed "
                     "to produce a timestamp"};
      }
    }
  }
  if (date_c || date_d) {
    return Error{"D3136", "Parsing dates given by week numbers is not supported"};
  }
  auto value = [&components](char32_t key) {
    auto it = components.find(key);
    return it == components.end() || !it->second ? std::nan("") : *it->second;
  };
  double month0 = value(U'M') > 0 ? value(U'M') - 1 : 0;  // January when missing or invalid
  double day = value(U'D');
  if (date_b) {
    const double first_jan = JsDateUtc(value(U'Y'), 0, 1, 0, 0, 0, 0);
    const double derived = first_jan + (value(U'd') - 1) * kMillisPerDay;
    if (!(std::fabs(derived) <= kMaxTimeValue)) return std::optional<double>();  // also NaN
    const DateTime dt = MakeDateTime(static_cast<int64_t>(derived));
    month0 = dt.date.month - 1;
    day = dt.date.day;
  }
  double hours = value(U'H');
  if (time_b) {
    hours = value(U'h') == 12 ? 0 : value(U'h');
    if (value(U'P') == 1) hours += 12;
  }
  double millis = JsDateUtc(value(U'Y'), month0, day, hours, value(U'm'), value(U's'), value(U'f'));
  const char32_t zone = Truthy(components, U'Z') ? U'Z' : U'z';
  if (Truthy(components, zone)) millis -= value(zone) * 60000;
  // jsonata-js yields NaN for impossible values; JSON has no NaN, so that is no value.
  if (std::isnan(millis)) return std::optional<double>();
  return std::optional<double>(millis);
}

// ---------------------------------------------------------------------------------------------
// ISO 8601 without a picture

// The shape jsonata-js accepts before handing the text to Date.parse:
//   ^\d{4}(-[01]\d)*(-[0-3]\d)*(T[0-2]\d:[0-5]\d:[0-5]\d)*(\.\d+)?([+-][0-2]\d:?[0-5]\d|Z)?$
bool IsDigitIn(std::string_view s, size_t i, char lo, char hi) {
  return i < s.size() && s[i] >= lo && s[i] <= hi;
}

bool MatchIsoTail(std::string_view s, size_t pos) {
  // (T[0-2]\d:[0-5]\d:[0-5]\d)*
  while (pos + 9 <= s.size() && s[pos] == 'T' && IsDigitIn(s, pos + 1, '0', '2') &&
         IsDigitIn(s, pos + 2, '0', '9') && s[pos + 3] == ':' && IsDigitIn(s, pos + 4, '0', '5') &&
         IsDigitIn(s, pos + 5, '0', '9') && s[pos + 6] == ':' && IsDigitIn(s, pos + 7, '0', '5') &&
         IsDigitIn(s, pos + 8, '0', '9')) {
    pos += 9;
  }
  if (pos < s.size() && s[pos] == '.' && IsDigitIn(s, pos + 1, '0', '9')) {
    ++pos;
    while (IsDigitIn(s, pos, '0', '9')) ++pos;
  }
  if (pos == s.size()) return true;
  if (s[pos] == 'Z') return pos + 1 == s.size();
  if (s[pos] != '+' && s[pos] != '-') return false;
  if (!IsDigitIn(s, pos + 1, '0', '2') || !IsDigitIn(s, pos + 2, '0', '9')) return false;
  size_t p = pos + 3;
  if (p < s.size() && s[p] == ':') ++p;
  return IsDigitIn(s, p, '0', '5') && IsDigitIn(s, p + 1, '0', '9') && p + 2 == s.size();
}

bool MatchesIsoShape(std::string_view s) {
  for (size_t i = 0; i < 4; ++i) {
    if (!IsDigitIn(s, i, '0', '9')) return false;
  }
  // Any number of "-dd" groups (each "-[01]\d" is also a "-[0-3]\d"); a trailing one may
  // instead be the start of a negative offset, so try every count.
  size_t pos = 4;
  std::vector<size_t> stops = {pos};
  while (pos + 3 <= s.size() && s[pos] == '-' && IsDigitIn(s, pos + 1, '0', '3') &&
         IsDigitIn(s, pos + 2, '0', '9')) {
    pos += 3;
    stops.push_back(pos);
  }
  for (auto it = stops.rbegin(); it != stops.rend(); ++it) {
    if (MatchIsoTail(s, *it)) return true;
  }
  return false;
}

int Digits(std::string_view s, size_t pos, size_t count) {
  int value = 0;
  for (size_t i = 0; i < count; ++i) value = value * 10 + (s[pos + i] - '0');
  return value;
}

// Date.parse for the date-time string format of ECMAScript (YYYY[-MM[-DD]][THH:mm:ss[.s+]]
// [Z|±HH:mm|±HHmm]), always in UTC. NaN for anything else.
double ParseIsoTimestamp(std::string_view s) {
  const double nan = std::nan("");
  size_t pos = 4;
  const int year = Digits(s, 0, 4);
  int month = 1;
  int day = 1;
  if (pos < s.size() && s[pos] == '-' && pos + 3 <= s.size() && IsDigitIn(s, pos + 1, '0', '9') &&
      IsDigitIn(s, pos + 2, '0', '9')) {
    month = Digits(s, pos + 1, 2);
    pos += 3;
    if (pos < s.size() && s[pos] == '-' && pos + 3 <= s.size() && IsDigitIn(s, pos + 1, '0', '9') &&
        IsDigitIn(s, pos + 2, '0', '9')) {
      day = Digits(s, pos + 1, 2);
      pos += 3;
    }
  }
  if (month < 1 || month > 12) return nan;
  const int days_in_month =
      static_cast<int>(DaysFromCivil(year + (month == 12 ? 1 : 0), month == 12 ? 1 : month + 1, 1) -
                       DaysFromCivil(year, month, 1));
  if (day < 1 || day > days_in_month) return nan;
  int64_t ms_of_day = 0;
  bool has_time = false;
  if (pos < s.size() && s[pos] == 'T') {
    if (pos + 9 > s.size()) return nan;
    const int h = Digits(s, pos + 1, 2);
    const int mi = Digits(s, pos + 4, 2);
    const int sec = Digits(s, pos + 7, 2);
    pos += 9;
    int64_t frac_ms = 0;
    if (pos < s.size() && s[pos] == '.') {
      ++pos;
      std::string digits;
      while (pos < s.size() && IsDigit(s[pos])) digits.push_back(s[pos++]);
      digits.resize(3, '0');  // Date.parse keeps milliseconds and drops finer digits
      frac_ms = Digits(digits, 0, 3);
    }
    if (h > 24 || mi > 59 || sec > 59 || (h == 24 && (mi != 0 || sec != 0 || frac_ms != 0))) {
      return nan;
    }
    ms_of_day = ((h * 60 + mi) * 60 + sec) * int64_t{1000} + frac_ms;
    has_time = true;
  }
  int64_t offset_minutes = 0;
  if (pos < s.size()) {
    if (!has_time) return nan;  // only date-time forms take an offset
    if (s[pos] == 'Z') {
      ++pos;
    } else {
      const int sign = s[pos] == '-' ? -1 : 1;
      const int oh = Digits(s, pos + 1, 2);
      size_t p = pos + 3;
      if (s[p] == ':') ++p;
      const int om = Digits(s, p, 2);
      if (oh > 23) return nan;
      offset_minutes = sign * (oh * 60 + om);
      pos = p + 2;
    }
  }
  if (pos != s.size()) return nan;  // e.g. repeated groups the shape check lets through
  return static_cast<double>(DaysFromCivil(year, month, day) * kMillisPerDay + ms_of_day -
                             offset_minutes * 60000);
}

double SystemNowMillis() {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  using std::chrono::system_clock;
  return static_cast<double>(
      duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

}  // namespace

Outcome<std::string> FromMillis(double millis, std::optional<std::string_view> picture,
                                std::optional<std::string_view> timezone) {
  int offset_hours = 0;
  int offset_minutes = 0;
  if (timezone) {
    // "±HHMM" read as one signed number, as jsonata-js does; both parts keep its sign.
    const double offset = JsParseInt(*timezone);
    if (!std::isnan(offset) && std::fabs(offset) < 10000) {
      offset_hours = static_cast<int>(std::trunc(offset / 100));
      offset_minutes = static_cast<int>(std::fmod(offset, 100));
    }
  }
  const double shifted =
      std::trunc(millis + (60.0 * offset_hours + offset_minutes) * 60000);  // like new Date()
  if (!std::isfinite(shifted) || std::fabs(shifted) > kMaxTimeValue) {
    return Error{"D3110", "The timestamp is outside the range of representable dates"};
  }
  auto parts = AnalyseDateTimePicture(
      DecodeUtf8(picture ? *picture : "[Y0001]-[M01]-[D01]T[H01]:[m01]:[s01].[f001][Z01:01t]"));
  if (!parts.ok()) return parts.error();
  const DateTime dt = MakeDateTime(static_cast<int64_t>(shifted));
  std::string result;
  for (const Part& part : *parts) {
    if (part.is_literal) {
      result += part.literal;
      continue;
    }
    auto text = FormatMarker(dt, part.marker, offset_hours, offset_minutes);
    if (!text.ok()) return text.error();
    result += *text;
  }
  return result;
}

Outcome<std::optional<double>> ToMillis(std::string_view timestamp,
                                        std::optional<std::string_view> picture,
                                        double now_millis) {
  if (picture) return ParseDateTime(timestamp, *picture, now_millis);
  if (!MatchesIsoShape(timestamp)) {
    return Error{"D3110", "The argument of $toMillis must be an ISO 8601 formatted timestamp: " +
                              std::string(timestamp)};
  }
  const double millis = ParseIsoTimestamp(timestamp);
  if (std::isnan(millis)) return std::optional<double>();
  return std::optional<double>(millis);
}

Outcome<std::optional<double>> ToMillis(std::string_view timestamp,
                                        std::optional<std::string_view> picture) {
  return ToMillis(timestamp, picture, SystemNowMillis());
}

}  // namespace engage::jsonata::picture
