#include "engage/lake/maintenance.h"

#include <fmt/format.h>

#include <map>

#include "engage/core/ids.h"
#include "engage/lake/duck.h"

namespace engage::lake {

Json RetentionReport::ToJson() const {
  Json d = Json::array();
  int64_t rows = 0, bytes = 0;
  for (const auto& x : dropped) {
    d.push_back({{"table", x.table},
                 {"dt", x.dt},
                 {"files", x.files},
                 {"rows", x.rows},
                 {"bytes", x.bytes}});
    rows += x.rows;
    bytes += x.bytes;
  }
  return Json{
      {"today", today},           {"dry_run", dry_run},     {"partitions_dropped", dropped.size()},
      {"rows_dropped", rows},     {"bytes_dropped", bytes}, {"dropped", d},
      {"emptied_tables", emptied}};
}

Json CompactionReport::ToJson() const {
  return Json{{"table", table},
              {"partitions_compacted", partitions_compacted},
              {"files_before", files_before},
              {"files_after", files_after},
              {"rows", rows},
              {"bytes_before", bytes_before},
              {"bytes_after", bytes_after}};
}

Result<RetentionReport> ApplyRetention(Lake& lake, const std::string& table, bool dry_run) {
  RetentionReport report;
  report.dry_run = dry_run;
  int64_t today = lake.clock().NowMicros() / (86400LL * 1000000);
  report.today = FormatDate(today);
  std::vector<const TableSpec*> specs;
  if (!table.empty()) {
    ENGAGE_ASSIGN_OR_RETURN(const TableSpec* t, lake.config().Table(table));
    specs.push_back(t);
  } else {
    for (const auto& [name, spec] : lake.config().tables) specs.push_back(&spec);
  }
  for (const TableSpec* spec : specs) {
    if (spec->retention_days <= 0) continue;
    std::string cutoff = FormatDate(today - spec->retention_days);
    ENGAGE_ASSIGN_OR_RETURN(auto files, lake.catalog().Files(spec->name));
    std::map<std::string, RetentionReport::Dropped> by_dt;
    std::vector<std::string> removed;
    for (const auto& f : files) {
      if (f.dt >= cutoff) continue;
      auto& d = by_dt[f.dt];
      d.table = spec->name;
      d.dt = f.dt;
      ++d.files;
      d.rows += f.rows;
      d.bytes += f.bytes;
      removed.push_back(f.path);
    }
    for (auto& [dt, d] : by_dt) report.dropped.push_back(d);
    if (!files.empty() && removed.size() == files.size()) report.emptied.push_back(spec->name);
    if (dry_run || removed.empty()) continue;
    Json details{{"cutoff", cutoff},
                 {"retention_days", spec->retention_days},
                 {"partitions", by_dt.size()},
                 {"files", removed.size()}};
    ENGAGE_RETURN_IF_ERROR(
        lake.catalog().ReplaceFiles(spec->name, removed, {}, "retention", details, lake.NowIso()));
  }
  return report;
}

Result<CompactionReport> Compact(Lake& lake, const std::string& table, int64_t min_files) {
  ENGAGE_ASSIGN_OR_RETURN(const TableSpec* spec, lake.config().Table(table));
  CompactionReport report;
  report.table = spec->name;
  ENGAGE_ASSIGN_OR_RETURN(auto files, lake.catalog().Files(spec->name));
  std::map<std::string, std::vector<LakeFile>> by_dt;
  for (const auto& f : files) by_dt[f.dt].push_back(f);

  std::string id = NewId(lake.clock());
  std::string staging = lake.home().staging() + "/compact-" + id;
  ENGAGE_RETURN_IF_ERROR(lake.fs().CreateDirs(staging));
  Cleanup remove_staging([&] { (void)lake.fs().RemoveAll(staging); });
  ENGAGE_ASSIGN_OR_RETURN(DuckDb db, DuckDb::Open({.temp_directory = lake.home().tmp()}));
  ENGAGE_ASSIGN_OR_RETURN(DuckConn conn, db.Connect());

  for (auto& [dt, parts] : by_dt) {
    if (static_cast<int64_t>(parts.size()) < min_files) continue;
    std::vector<std::string> abs;
    int64_t rows = 0, bytes = 0;
    for (const auto& f : parts) {
      abs.push_back(lake.AbsPath(f.path));
      rows += f.rows;
      bytes += f.bytes;
    }
    std::string name = fmt::format("part-{}-c.parquet", id);
    std::string tmp = staging + "/" + name;
    ENGAGE_ASSIGN_OR_RETURN(
        auto copied, conn.Query(fmt::format("COPY (SELECT * FROM read_parquet({})) TO {} (FORMAT "
                                            "parquet, COMPRESSION zstd)",
                                            SqlList(abs), SqlQuote(tmp))));
    ENGAGE_ASSIGN_OR_RETURN(
        auto meta,
        conn.Query(fmt::format("SELECT num_rows FROM parquet_file_metadata({})", SqlQuote(tmp))));
    int64_t new_rows = meta.Int(0, 0);
    if (new_rows != rows) {
      return DataLossError(fmt::format(
          "compacting {}/dt={}: wrote {} rows but the partition has {}; nothing changed", table, dt,
          new_rows, rows));
    }
    LakeFile nf;
    nf.table = spec->name;
    nf.dt = dt;
    nf.path = fmt::format("{}/dt={}/{}", spec->name, dt, name);
    nf.rows = new_rows;
    nf.ingest_id = "compact-" + id;
    ENGAGE_ASSIGN_OR_RETURN(nf.bytes, lake.fs().FileSize(tmp));
    ENGAGE_RETURN_IF_ERROR(lake.fs().Rename(tmp, lake.AbsPath(nf.path)));
    std::vector<std::string> removed;
    for (const auto& f : parts) removed.push_back(f.path);
    Json details{{"dt", dt},
                 {"files_before", parts.size()},
                 {"rows", rows},
                 {"bytes_before", bytes},
                 {"bytes_after", nf.bytes}};
    Status s = lake.catalog().ReplaceFiles(spec->name, removed, {nf}, "compaction", details,
                                           lake.NowIso());
    if (!s.ok()) {
      (void)lake.fs().RemoveAll(lake.AbsPath(nf.path));
      return s;
    }
    ++report.partitions_compacted;
    report.files_before += static_cast<int64_t>(parts.size());
    report.files_after += 1;
    report.rows += rows;
    report.bytes_before += bytes;
    report.bytes_after += nf.bytes;
  }
  return report;
}

}  // namespace engage::lake
