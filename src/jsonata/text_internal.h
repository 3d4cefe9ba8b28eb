// Text helpers shared by the JSONata parser, evaluator and function library: UTF-8 <-> code
// points (JSONata string functions count Unicode code points), JavaScript number formatting,
// and the translation of JavaScript regular expressions to std::regex's ECMAScript dialect.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engage/core/text.h"
#include "engage/jsonata/regex.h"

namespace engage::jsonata::internal {

using ::engage::AppendUtf8;    // core/text.h
using ::engage::DecodeUtf8At;  // core/text.h
using ::engage::IsValidUtf8;   // core/text.h
// Decodes UTF-8; an invalid byte decodes to itself (0x80..0xFF) so round trips are lossless.
std::vector<uint32_t> DecodeUtf8(std::string_view s);
std::string EncodeUtf8(const std::vector<uint32_t>& cps, size_t begin, size_t end);
size_t CodePointCount(std::string_view s);

// JavaScript's Number.prototype.toString for a finite double.
std::string JsNumberToString(double d);
// JSONata's number formatting in $string: toPrecision(15), then JavaScript formatting.
std::string FormatNumberForString(double d);

// Rewrites a JavaScript regex pattern for std::regex (ECMAScript grammar).
std::string TranslateRegex(std::string_view pattern);

// RegexCountsFit (the guard before std::regex) is public: engage/jsonata/regex.h.

}  // namespace engage::jsonata::internal
