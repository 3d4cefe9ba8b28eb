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
// The compact form is Engage's own serializer: the same text as nlohmann's dump, written
// several times faster (the execution history serializes every state's input and output).
std::string DumpJson(const Json& j, int indent = -1);
// Appends DumpJson(j) to `out`.
void AppendJson(std::string* out, const Json& j);
// DumpJson(j).size(), without building the text.
size_t CompactJsonSize(const Json& j);
// {"error": {"code": "NOT_FOUND", "message": "..."}}
Json StatusToJson(const Status& s);

}  // namespace engage
