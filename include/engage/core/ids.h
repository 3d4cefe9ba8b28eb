// Identifiers and content hashes.
#pragma once

#include <cstdint>
#include <string>

#include "engage/core/clock.h"
#include "engage/core/status.h"

namespace engage {

// A sortable unique id: "<yyyymmddThhmmss>-<8 hex random>", e.g. "20240301T120000-9f3ab2c1".
std::string NewId(const Clock& clock);
// True if `id` is safe to embed in a file name: [A-Za-z0-9_.-]{1,64}, not starting with '.'.
bool IsSafeId(const std::string& id);
// Hex SHA-256 of a file's bytes; kNotFound / kPermissionDenied naming the file.
Result<std::string> Sha256File(const std::string& path);
std::string Sha256Hex(std::string_view data);

}  // namespace engage
