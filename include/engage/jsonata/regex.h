// Regular-expression guard shared by JSONata regex literals and JSONPath's `=~ /regex/` filters
// (flow): both hand JavaScript-style patterns to std::regex.
//
//   if (!jsonata::RegexCountsFit(pattern)) return Error("invalid regular expression");
//   std::regex re(pattern, std::regex::ECMAScript);
//
// Thread-safety: pure function.
#pragma once

#include <string_view>

namespace engage::jsonata {

// False when `pattern` must not reach std::regex: libstdc++ reads the digits of a back-reference
// (`\12`) or of a repetition count (`{3,7}`) into a long with no overflow check, so a run of ~20
// digits there is undefined behaviour.
bool RegexCountsFit(std::string_view pattern);

}  // namespace engage::jsonata
