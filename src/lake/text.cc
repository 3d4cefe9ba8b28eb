// The lake's reports and listings as text for people (`engage ingest|tables|history|retention|
// compact`).
#include "engage/core/text.h"

#include <fmt/format.h>

#include "engage/lake/catalog.h"
#include "engage/lake/ingest.h"
#include "engage/lake/lake.h"
#include "engage/lake/maintenance.h"

namespace engage::lake {

std::string IngestReport::ToText() const {
  const IngestRecord& r = record;
  std::string out =
      no_op ? fmt::format("no-op: all {} source file(s) were already ingested into '{}'\n",
                          skipped.size(), r.table)
            : fmt::format(
                  "ingest {} into '{}': read {} rows, accepted {}, rejected {}; wrote {} file(s), "
                  "{} in {} partition(s) in {:.0f} ms\n",
                  r.id, r.table, r.rows_read, r.rows_accepted, r.rows_rejected, r.files_written,
                  HumanBytes(r.bytes_written), r.partitions.size(), r.duration_ms);
  for (const auto& s : skipped) {
    out +=
        no_op ? fmt::format("  {} (ingest {})\n", s.path, s.previous_ingest_id)
              : fmt::format("  skipped {}: already ingested by {}\n", s.path, s.previous_ingest_id);
  }
  if (!quarantine_file.empty()) out += "  rejected rows and reasons: " + quarantine_file + "\n";
  return out;
}

std::string RetentionReport::ToText() const {
  int64_t rows = 0, bytes = 0;
  for (const auto& d : dropped) {
    rows += d.rows;
    bytes += d.bytes;
  }
  std::string out = fmt::format("{} {} partition(s), {} rows, {} (today {})\n",
                                dry_run ? "would drop" : "dropped", dropped.size(), rows,
                                HumanBytes(bytes), today);
  for (const std::string& t : emptied) {
    out += fmt::format(
        "warning: {} every partition of '{}': all its data is older than its retention_days "
        "(engage.toml [tables.{}])\n",
        dry_run ? "this would drop" : "dropped", t, t);
  }
  return out;
}

std::string CompactionReport::ToText() const {
  return fmt::format("compacted {} partition(s) of '{}': {} files -> {}, {} rows, {} -> {}\n",
                     partitions_compacted, table, files_before, files_after, rows,
                     HumanBytes(bytes_before), HumanBytes(bytes_after));
}

std::string TablesTable(const std::vector<TableInfo>& tables) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& t : tables) {
    rows.push_back(
        {t.spec->name, std::to_string(t.spec->columns.size() + 1), std::to_string(t.partitions),
         std::to_string(t.files), std::to_string(t.rows), HumanBytes(t.bytes),
         t.min_dt.empty() ? "-" : t.min_dt + " .. " + t.max_dt,
         t.spec->retention_days ? std::to_string(t.spec->retention_days) + "d" : "forever"});
  }
  return FormatTable(
      {"table", "columns", "partitions", "files", "rows", "bytes", "dates", "retention"}, rows);
}

std::string DescribeTable(const TableInfo& info, const std::vector<PartitionStats>& partitions) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : info.spec->columns) {
    std::string rules;
    if (c.min) rules += fmt::format("min {} ", *c.min);
    if (c.max) rules += fmt::format("max {} ", *c.max);
    if (!c.allowed.empty()) rules += fmt::format("{} allowed values ", c.allowed.size());
    rows.push_back({c.name, std::string(ColumnTypeName(c.type)), c.required ? "yes" : "",
                    c.expr.empty() ? c.source : "expr: " + c.expr, rules});
  }
  const std::string& tc = info.spec->time_column;
  rows.push_back({"dt", "date", "yes",
                  tc.empty() ? "partition (load date)" : "partition (date of " + tc + ")", ""});
  std::string out =
      fmt::format("table {}: {} partition(s), {} file(s), {} rows, {}\n\n", info.spec->name,
                  info.partitions, info.files, info.rows, HumanBytes(info.bytes)) +
      FormatTable({"column", "type", "required", "source", "rules"}, rows);
  if (partitions.empty()) return out;
  rows.clear();
  for (const auto& p : partitions) {
    rows.push_back({p.dt, std::to_string(p.files), std::to_string(p.rows), HumanBytes(p.bytes)});
  }
  return out + "\n" + FormatTable({"dt", "files", "rows", "bytes"}, rows);
}

std::string QueryHistoryTable(const std::vector<QueryRecord>& records) {
  std::vector<std::vector<std::string>> rows;
  double total = 0;
  for (const auto& q : records) {
    total += q.cost_usd;
    // The SQL in one line, cut: `engage history --json` has it whole.
    std::string sql;
    for (char c : q.sql) {
      bool blank = c == ' ' || c == '\n' || c == '\r' || c == '\t';
      if (!blank || (!sql.empty() && sql.back() != ' ')) sql += blank ? ' ' : c;
      if (sql.size() > 200) break;
    }
    while (!sql.empty() && sql.back() == ' ') sql.pop_back();
    if (sql.size() > 200) sql = sql.substr(0, 197) + "...";
    rows.push_back({q.at, q.status, HumanBytes(q.bytes_scanned), Usd(q.cost_usd),
                    fmt::format("{:.0f}", q.elapsed_ms), sql});
  }
  return FormatTable({"at", "status", "scanned", "cost", "ms", "sql"}, rows) +
         "total cost of these queries: " + Usd(total) + "\n";
}

Json DescribeTableJson(const TableInfo& table, const std::vector<PartitionStats>& partitions) {
  Json j = table.ToJson();
  j["partition_list"] = Json::array();
  for (const auto& p : partitions) j["partition_list"].push_back(p.ToJson());
  return j;
}

Json QueryHistoryJson(const std::vector<QueryRecord>& records) {
  double total = 0;
  Json arr = Json::array();
  for (const auto& q : records) {
    total += q.cost_usd;
    arr.push_back(q.ToJson());
  }
  return Json{{"queries", std::move(arr)}, {"total_cost_usd", total}};
}

}  // namespace engage::lake
