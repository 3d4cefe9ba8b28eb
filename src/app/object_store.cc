// The local S3 stand-in of distributed Map states (see steps.h).
#include <fmt/format.h>

#include <filesystem>
#include <map>

#include "engage/app/steps.h"
#include "engage/lake/duck.h"

namespace engage::app {

namespace fs = std::filesystem;

namespace {

Result<Json> ReadParquetRows(const std::string& path, int64_t max_items) {
  lake::DuckOptions opts;
  opts.threads = 1;
  ENGAGE_ASSIGN_OR_RETURN(lake::DuckDb db, lake::DuckDb::Open(opts));
  ENGAGE_ASSIGN_OR_RETURN(lake::DuckConn conn, db.Connect());
  std::string sql =
      fmt::format("SELECT to_json(t)::VARCHAR FROM read_parquet({}) t", lake::SqlQuote(path));
  if (max_items >= 0) sql += fmt::format(" LIMIT {}", max_items);
  auto r = conn.Query(sql);
  if (!r.ok()) {
    return InvalidArgumentError(
        fmt::format("cannot read '{}' as Parquet: {}", path, r.status().message()));
  }
  Json rows = Json::array();
  for (int64_t i = 0; i < r->RowCount(); ++i) {
    std::optional<std::string> text = r->Str(0, i);
    rows.push_back(text ? Json::parse(*text, nullptr, false) : Json());
  }
  return rows;
}

}  // namespace

void ConfigureObjectStore(flow::EngineOptions& options, const Config& config,
                          const HomePaths& home) {
  std::map<std::string, std::string> buckets;
  for (const auto& [name, dir] : config.flow.buckets) {
    fs::path p(dir);
    buckets[name] = p.is_absolute() ? p.string() : (fs::path(home.root) / p).string();
  }
  std::string lake_dir = home.lake();
  options.bucket_dir = [buckets, lake_dir](const std::string& bucket,
                                           bool for_write) -> Result<std::string> {
    if (bucket == "lake") {
      if (for_write) {
        return PermissionDeniedError(
            "the bucket 'lake' (the Engage lake) is read-only: write results to a bucket from "
            "[flow.buckets]");
      }
      return lake_dir;
    }
    auto it = buckets.find(bucket);
    if (it == buckets.end()) {
      return NotFoundError(fmt::format(
          "bucket '{}' is not mapped to a directory: add it under [flow.buckets] in engage.toml, "
          "e.g. {} = \"/data/{}\"",
          bucket, bucket, bucket));
    }
    return it->second;
  };
  options.read_parquet = ReadParquetRows;
}

}  // namespace engage::app
