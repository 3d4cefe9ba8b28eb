// JSON helpers shared by the CLI (--json) and the server, so both print the same bodies.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "engage/core/status.h"

namespace engage {

using Json = nlohmann::ordered_json;

// The deepest nesting of arrays and objects Engage accepts in a JSON document it did not write
// (request bodies, execution inputs, files). Copying, comparing, dumping and destroying a value
// recurse once per level, so an unbounded depth would overflow a thread's stack.
inline constexpr int kMaxJsonDepth = 512;

// Parses `text`; kInvalidArgument naming `what` (e.g. a file) on error, including a document
// nested deeper than `max_depth` (checked on the text before anything is built).
Result<Json> ParseJson(std::string_view text, std::string_view what, int max_depth = kMaxJsonDepth);
// The nesting depth of the JSON text (0 for a scalar), counting brackets outside strings; stops
// counting once it passes `stop_above`. Linear, no allocation.
int JsonTextDepth(std::string_view text, int stop_above = kMaxJsonDepth);
// The nesting depth of a value (0 for a scalar), without recursion; stops once it passes
// `stop_above`, so it is safe on any value.
int JsonDepth(const Json& j, int stop_above = kMaxJsonDepth);
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
