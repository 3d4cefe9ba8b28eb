// Small helpers shared inside the flow component.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engage/core/json.h"

namespace engage::flow {

// Structural equality with numbers compared by value (1 == 1.0), as ASL compares them.
bool JsonEqual(const Json& a, const Json& b);

// A random (version 4) UUID, lower-case hex with dashes.
std::string NewUuidV4();

// Parses an RFC 3339 / ISO-8601 extended offset date-time ("2016-03-14T01:59:00Z",
// "...T01:59:00.123+02:00"); microseconds since the epoch, nullopt when malformed or out of
// range. Requires the 'T', seconds and an offset, as AWS does.
std::optional<int64_t> ParseTimestampMicros(std::string_view s);

// Size in bytes of `v` serialised compactly (what AWS counts against its payload limits).
size_t JsonSizeBytes(const Json& v);

}  // namespace engage::flow
