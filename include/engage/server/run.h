// `engage serve`: the HTTP API of a home, run until SIGTERM or SIGINT.
#pragma once

#include <string>

#include "engage/core/home.h"
#include "engage/core/status.h"
#include "engage/server/api.h"
#include "engage/server/http.h"

namespace engage::server {

struct ServeOptions {
  HttpServerOptions http;
  ApiOptions api;
  std::string port_file;  // the bound port is written there once listening

  // kInvalidArgument naming the first option out of its range (as `engage serve` spells it):
  // --port 0..65535, --threads 0..1024, --max-connections 1..1000000, --max-body-bytes
  // 1 KiB..1 GiB, --rate-limit 0 (none)..1000000 a second, --burst 1..10000000.
  Status Validate() const;
};

// Opens the app on `home` and serves its API until SIGTERM or SIGINT (which every thread but
// one blocks: call this before starting any thread), then drains: requests in flight finish,
// executions still running are stopped (ABORTED in their history) and recorded. Picks up newly
// published snapshots within a second. Prints the listening address on stdout.
Status Serve(const HomePaths& home, const ServeOptions& options);

}  // namespace engage::server
