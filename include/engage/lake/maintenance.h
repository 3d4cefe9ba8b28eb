// Lake maintenance: retention (drop partitions past a table's retention) and compaction
// (merge a partition's small files into one). Both publish their change in one catalog
// transaction, so a reader sees the partition either before or after, never half-way; removed
// files stay on disk for the lake's trash grace period so queries already running finish.
#pragma once

#include <string>
#include <vector>

#include "engage/core/json.h"
#include "engage/lake/lake.h"

namespace engage::lake {

struct RetentionReport {
  struct Dropped {
    std::string table;
    std::string dt;
    int64_t files = 0;
    int64_t rows = 0;
    int64_t bytes = 0;
  };
  std::string today;  // the date retention was computed from
  std::vector<Dropped> dropped;
  // Tables that lose every partition (all their data is older than their retention_days): a
  // warning worth reading before running it for real.
  std::vector<std::string> emptied;
  bool dry_run = false;
  Json ToJson() const;
  // "dropped 3 partition(s), 120 rows, 4.1 KB (today ...)", then a warning per emptied table.
  std::string ToText() const;
};

// Drops every partition whose date is older than today - retention_days (tables with
// retention_days = 0 keep everything). `table` empty = all tables. Recorded in the lake log.
Result<RetentionReport> ApplyRetention(Lake& lake, const std::string& table, bool dry_run);

struct CompactionReport {
  std::string table;
  int64_t partitions_compacted = 0;
  int64_t files_before = 0;
  int64_t files_after = 0;
  int64_t rows = 0;
  int64_t bytes_before = 0;
  int64_t bytes_after = 0;
  Json ToJson() const;
  std::string ToText() const;
};

// Merges the files of each partition of `table` holding at least `min_files` files into one
// Parquet file. Row counts are checked before publishing (kDataLoss if they differ).
Result<CompactionReport> Compact(Lake& lake, const std::string& table, int64_t min_files = 2);

}  // namespace engage::lake
