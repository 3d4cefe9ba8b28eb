// Text for people: aligned tables, byte counts and dollar amounts, as the CLI prints them and
// the components' ToText() renderings use them.
#pragma once

#include <cstdint>
#include <string>
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

}  // namespace engage
