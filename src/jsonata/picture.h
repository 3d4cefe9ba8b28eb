// XPath/XQuery picture-string formatting and parsing behind JSONata's $formatInteger,
// $parseInteger, $formatNumber, $fromMillis and $toMillis (XPath F&O 3.1 sections 4.6.1
// format-integer, 4.7 format-number and 9.8 format-dateTime, as JSONata adapts them).
//
// Pure functions: no evaluator state, no locale, no time zone of the machine (UTC unless a
// time-zone offset is passed). Errors use JSONata's codes (D3130..., D3133, D3137, ...).
// Thread-safety: all functions are safe to call concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engage/jsonata/jsonata.h"

namespace engage::jsonata::picture {

// $formatInteger(number, picture), e.g. (1234, "#,##0") -> "1,234", (3, "w") -> "three",
// (1999, "I") -> "MCMXCIX".
Outcome<std::string> FormatInteger(double value, std::string_view picture);

// $parseInteger(string, picture): the inverse of FormatInteger. nullopt when `value` does not
// match the picture in a way JSONata reports as undefined.
Outcome<std::optional<double>> ParseInteger(std::string_view value, std::string_view picture);

// The decimal-format properties $formatNumber's optional third argument can override.
struct DecimalFormat {
  std::string decimal_separator = ".";
  std::string grouping_separator = ",";
  std::string exponent_separator = "e";
  std::string minus_sign = "-";
  std::string infinity = "Infinity";
  std::string nan = "NaN";
  std::string percent = "%";
  std::string per_mille = "\u2030";
  std::string zero_digit = "0";
  std::string digit = "#";
  std::string pattern_separator = ";";
};

// $formatNumber(number, picture [, options]).
Outcome<std::string> FormatNumber(double value, std::string_view picture,
                                  const DecimalFormat& format = {});

// $fromMillis(millis [, picture [, timezone]]): with no picture, ISO 8601 with milliseconds
// ("2018-03-23T10:33:36.617Z"); `timezone` is "±HHMM".
Outcome<std::string> FromMillis(double millis, std::optional<std::string_view> picture,
                                std::optional<std::string_view> timezone);

// $toMillis(timestamp [, picture]): with no picture, ISO 8601. nullopt when the timestamp
// does not match the picture (JSONata's undefined).
Outcome<std::optional<double>> ToMillis(std::string_view timestamp,
                                        std::optional<std::string_view> picture);

// As above, with the components a picture leaves out before its most significant one (the date
// for "[H]:[m]", the year for "[D] [MNn]") taken from `now_millis`, which should be the
// evaluation's timestamp ($millis()) so that $now() and $toMillis agree. The overload above
// uses the system clock.
Outcome<std::optional<double>> ToMillis(std::string_view timestamp,
                                        std::optional<std::string_view> picture, double now_millis);

}  // namespace engage::jsonata::picture
