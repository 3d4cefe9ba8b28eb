// The lake: one installation's home (config, catalog, partitioned Parquet files).
//
//   ENGAGE_RETURN_IF_ERROR(Lake::Init(home, /*force=*/false));
//   ENGAGE_ASSIGN_OR_RETURN(auto lake, Lake::Open(home, {}));
//   ENGAGE_ASSIGN_OR_RETURN(auto report, Ingest(*lake, req));
//
// Writers (ingest, compaction, retention) hold an exclusive lock on <home>/.lock for their whole
// run; opening the lake for writing also runs recovery under that lock, removing whatever a
// killed writer left behind (staging directories, files never published in the catalog,
// quarantine files of uncommitted ingests, trash past its grace period). Readers take no lock:
// they only read files the catalog lists.
//
// Thread-safety: a Lake is used by one thread at a time.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engage/core/clock.h"
#include "engage/core/config.h"
#include "engage/core/fs.h"
#include "engage/core/home.h"
#include "engage/core/json.h"
#include "engage/lake/catalog.h"

namespace engage::lake {

struct LakeOptions {
  std::shared_ptr<FileSystem> fs;  // default: PosixFileSystem
  const Clock* clock = nullptr;    // default: SystemClock
  bool writer = false;             // take the writer lock and run recovery
  // Files removed by compaction/retention stay readable this long for queries in flight.
  int64_t trash_grace_seconds = 600;
};

struct TableInfo {
  const TableSpec* spec = nullptr;
  int64_t partitions = 0;
  int64_t files = 0;
  int64_t rows = 0;
  int64_t bytes = 0;
  std::string min_dt;
  std::string max_dt;

  Json ToJson() const;
};

// Tables as a table: name, columns, partitions, files, rows, bytes, dates, retention.
std::string TablesTable(const std::vector<TableInfo>& tables);
// One table for people: its totals, its columns with types and rules, and its partitions.
std::string DescribeTable(const TableInfo& table, const std::vector<PartitionStats>& partitions);
// The same as JSON: the table's ToJson() with "partition_list".
Json DescribeTableJson(const TableInfo& table, const std::vector<PartitionStats>& partitions);

// What recovery removed (also logged as a warning when anything was).
struct RecoveryReport {
  int64_t staging_dirs_removed = 0;
  int64_t orphan_files_removed = 0;
  int64_t trash_files_removed = 0;
  int64_t orphan_quarantine_removed = 0;
};

class Lake {
 public:
  // Creates the home (directories, engage.toml, meta.db). kAlreadyExists if engage.toml exists
  // unless `force` (which rewrites only engage.toml, keeping data).
  static Status Init(const HomePaths& home, bool force);
  // kNotFound (with a hint to run `engage init`) if the home has no engage.toml.
  static Result<std::unique_ptr<Lake>> Open(const HomePaths& home, LakeOptions opts);
  ~Lake();

  const HomePaths& home() const { return home_; }
  const Config& config() const { return config_; }
  Catalog& catalog() { return catalog_; }
  FileSystem& fs() { return *fs_; }
  const Clock& clock() const { return *clock_; }
  std::string NowIso() const { return FormatIsoUtc(clock_->NowMicros()); }
  // Absolute path of a catalogued file (relative to lake/).
  std::string AbsPath(const std::string& rel) const { return home_.lake() + "/" + rel; }

  Result<std::vector<TableInfo>> Tables();
  Result<TableInfo> Table(const std::string& name);
  const RecoveryReport& recovery() const { return recovery_; }

 private:
  Lake(HomePaths home, Config config, Catalog catalog, LakeOptions opts);
  Status Lock();
  Status Recover();

  HomePaths home_;
  Config config_;
  Catalog catalog_;
  std::shared_ptr<FileSystem> fs_;
  const Clock* clock_;
  LakeOptions opts_;
  int lock_fd_ = -1;
  RecoveryReport recovery_;
};

}  // namespace engage::lake
