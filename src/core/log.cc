#include "engage/core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdlib>
#include <mutex>

namespace engage {

void InitLogging(bool verbose) {
  static std::once_flag once;
  std::call_once(once, [verbose] {
    auto logger = spdlog::stderr_color_mt("engage");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    spdlog::set_default_logger(logger);
    spdlog::set_level(verbose ? spdlog::level::debug : spdlog::level::warn);
    if (const char* lvl = std::getenv("ENGAGE_LOG_LEVEL")) {
      spdlog::set_level(spdlog::level::from_str(lvl));
    }
  });
}

}  // namespace engage
