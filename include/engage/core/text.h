// Text for people: aligned tables, byte counts and dollar amounts, as the CLI prints them and
// the components' ToText() renderings use them; and the pieces of string escapes that the JSON-like
// parsers (JSONPath, JSONata) share.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace engage {

// Rows under a header as an aligned table with a dashed rule, one line per row, each ending in
// "\n". Cells but the last are cut to 60 characters ("..."); missing cells are empty.
std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);

// "812 B", "1.2 MB" (powers of 1000).
std::string HumanBytes(int64_t bytes);

// "$0", "$0.000123" below a cent, else "$1.2345".
std::string Usd(double v);

// Appends code point `cp` as UTF-8; a lone surrogate as its three bytes (as WTF-8, the way JSON
// text may carry one).
void AppendUtf8(std::string& out, uint32_t cp);
// Decodes the code point of UTF-8 text `s` at byte `i` into `*cp`; returns its length in bytes,
// or 0 when the bytes there are not UTF-8.
size_t DecodeUtf8At(std::string_view s, size_t i, uint32_t* cp);
// True when `s` is well-formed UTF-8 without surrogate code points.
bool IsValidUtf8(std::string_view s);

// What a one-letter escape of a JSON-like string stands for: \b \f \n \r \t; 0 for any other
// letter (the parsers decide what those mean).
char ControlEscape(char letter);

// The value of the four hex digits of `text` at `at` (a \u escape's), or -1 when there are not
// four hex digits there.
int32_t ParseHex4(std::string_view text, size_t at);

}  // namespace engage
