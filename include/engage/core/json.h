// JSON helpers shared by the CLI (--json) and the server, so both print the same bodies.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "engage/core/status.h"

namespace engage {

using Json = nlohmann::ordered_json;

// Parses `text`; kInvalidArgument naming `what` (e.g. a file) and the byte offset on error.
Result<Json> ParseJson(std::string_view text, std::string_view what);
// Compact one-line JSON with invalid UTF-8 replaced rather than throwing.
std::string DumpJson(const Json& j, int indent = -1);
// {"error": {"code": "NOT_FOUND", "message": "..."}}
Json StatusToJson(const Status& s);

}  // namespace engage
