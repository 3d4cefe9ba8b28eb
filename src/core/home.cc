#include "engage/core/home.h"

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>

namespace engage {

Status HomePaths::Require(const char* kept) const {
  std::error_code ec;
  if (std::filesystem::exists(config(), ec)) return Status::Ok();
  std::string what = kept ? fmt::format(" ({} are kept in its meta.db)", kept) : "";
  return FailedPreconditionError(
      fmt::format("no Engage home at '{}'{}: run `engage init` first or pass --home", root, what));
}

HomePaths ResolveHome(const std::string& flag_value) {
  std::string root = flag_value;
  if (root.empty()) {
    const char* env = std::getenv("ENGAGE_HOME");
    root = (env && *env) ? env : "engage-home";
  }
  std::error_code ec;
  auto abs = std::filesystem::absolute(root, ec);
  HomePaths h;
  h.root = ec ? root : abs.lexically_normal().string();
  while (h.root.size() > 1 && h.root.back() == '/') h.root.pop_back();
  return h;
}

}  // namespace engage
