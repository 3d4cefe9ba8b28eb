// Logging: spdlog to stderr, quiet by default so command output stays clean.
// ENGAGE_LOG_LEVEL=debug|info|warn|error overrides the level.
#pragma once

#include <spdlog/spdlog.h>

namespace engage {

// Configures the default logger once per process. Thread-safe.
void InitLogging(bool verbose);

}  // namespace engage
