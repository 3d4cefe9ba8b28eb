// The home directory: all state of one installation (DESIGN.md "Home directory").
#pragma once

#include <string>

#include "engage/core/status.h"

namespace engage {

struct HomePaths {
  std::string root;
  std::string config() const { return root + "/engage.toml"; }
  std::string lake() const { return root + "/lake"; }
  std::string quarantine() const { return root + "/lake/_quarantine"; }
  std::string staging() const { return root + "/lake/_staging"; }
  std::string meta_db() const { return root + "/meta.db"; }
  std::string tmp() const { return root + "/tmp"; }
  std::string models() const { return root + "/models"; }
  // Ok when the home exists (has engage.toml); else kFailedPrecondition saying to run `engage
  // init` or pass --home, with `kept` ("API keys", ...) naming what the home would hold.
  Status Require(const char* kept = nullptr) const;
};

// --home if given, else $ENGAGE_HOME, else ./engage-home; made absolute.
HomePaths ResolveHome(const std::string& flag_value);

}  // namespace engage
