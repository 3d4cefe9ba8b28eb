// The local stand-in for Amazon S3 that `engage flow` gives a distributed Map's ItemReader and
// ResultWriter: buckets from [flow.buckets] in engage.toml (relative paths resolve against the
// home), plus the read-only bucket "lake" (the home's lake directory), and Parquet reading
// through DuckDB for ItemReader InputType PARQUET.
#pragma once

#include "engage/core/config.h"
#include "engage/core/home.h"
#include "engage/flow/engine.h"

namespace engage::cli {

void ConfigureObjectStore(flow::EngineOptions& options, const Config& config,
                          const HomePaths& home);

}  // namespace engage::cli
