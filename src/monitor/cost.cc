#include "engage/monitor/cost.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "engage/core/text.h"

namespace engage::monitor {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr double kDaysPerMonth = 30.4375;  // an average month: S3 bills GB-months
constexpr int64_t kMaxStorageGapDays = 366;

void SetDetail(Json* detail, Json value) {
  if (detail != nullptr) *detail = std::move(value);
}

// The SQL expression a --by groups on, over the ledger row aliased `t`.
Result<std::string> GroupExpression(const std::string& by, const std::string& t) {
  if (by == "kind") return t + ".kind";
  if (by == "day") return fmt::format("substr({}.at, 1, 10)", t);
  if (by == "table") return t + ".tables";
  if (by == "pipeline") return t + ".pipeline";
  if (by == "step") return t + ".step";
  if (by == "model") return t + ".model";
  return InvalidArgumentError(
      fmt::format("--by must be kind, day, table, pipeline, step or model, got '{}'", by));
}

Usage ReadUsage(const SqliteStmt& st, int first) {
  Usage u;
  u.cpu_seconds = st.Double(first);
  u.wall_seconds = st.Double(first + 1);
  u.bytes_read = st.Int(first + 2);
  u.bytes_written = st.Int(first + 3);
  u.peak_memory_bytes = st.Int(first + 4);
  return u;
}

constexpr const char* kUsageSums =
    "coalesce(sum(cpu_seconds), 0), coalesce(sum(wall_seconds), 0), coalesce(sum(bytes_read), 0), "
    "coalesce(sum(bytes_written), 0), coalesce(max(peak_memory_bytes), 0)";

// A group's usage counts each row whose enclosing work (its parent row `p`) is not in the same
// group: a step's queries are inside the step's own figures, so grouped by step they count once,
// while grouped by kind the queries have a row of their own. `outer` is that condition.
std::string OuterUsageSums(const std::string& outer) {
  auto sum = [&](const char* col) {
    return fmt::format("coalesce(sum(CASE WHEN {} THEN c.{} ELSE 0 END), 0)", outer, col);
  };
  return fmt::format("{}, {}, {}, {}, coalesce(max(c.peak_memory_bytes), 0)", sum("cpu_seconds"),
                     sum("wall_seconds"), sum("bytes_read"), sum("bytes_written"));
}

// A scope's filter on cost_ledger rows, with one text parameter (or none for all/queries).
std::string ScopeFilter(const std::string& scope, std::string* param) {
  if (scope == "queries") return "kind = 'query'";
  if (scope.rfind("pipeline:", 0) == 0) {
    *param = scope.substr(9);
    return "pipeline = ?";
  }
  if (scope.rfind("table:", 0) == 0) {
    *param = scope.substr(6);
    return "(',' || tables || ',') LIKE ('%,' || ? || ',%')";
  }
  return "1 = 1";
}

std::string Key(const std::string& k) { return k.empty() ? "-" : k; }

}  // namespace

double FargateUsd(const Prices& prices, const Usage& used, Json* detail) {
  double wall = std::max(used.wall_seconds, 0.0);
  double vcpus = wall > 0 ? std::ceil(used.cpu_seconds / wall) : 1;
  vcpus = std::clamp(vcpus, 1.0, 16.0);
  // Fargate's sizes: 1, 2, 4, 8 or 16 vCPUs.
  double size = 1;
  while (size < vcpus) size *= 2;
  double memory_gb = std::ceil(static_cast<double>(used.peak_memory_bytes) / kGiB);
  memory_gb = std::max(memory_gb, 2.0 * size);
  double billed = std::max(wall, prices.fargate_min_seconds);
  double usd = billed / 3600.0 *
               (size * prices.fargate_vcpu_hour_usd + memory_gb * prices.fargate_gb_hour_usd);
  SetDetail(detail, Json{{"service", "fargate"},
                         {"vcpus", size},
                         {"memory_gb", memory_gb},
                         {"billed_seconds", billed}});
  return usd;
}

double LambdaUsd(const Prices& prices, int64_t requests, double seconds, Json* detail) {
  double gb_seconds = std::max(seconds, 0.0) * prices.lambda_memory_gb;
  double usd = static_cast<double>(requests) * prices.lambda_request_usd +
               gb_seconds * prices.lambda_gb_second_usd;
  SetDetail(detail,
            Json{{"service", "lambda"}, {"requests", requests}, {"gb_seconds", gb_seconds}});
  return usd;
}

double TransitionsUsd(const Prices& prices, int64_t transitions, Json* detail) {
  SetDetail(detail, Json{{"service", "step_functions"}, {"state_transitions", transitions}});
  return static_cast<double>(transitions) * prices.state_transition_usd;
}

double DynamoUsd(const Prices& prices, int64_t reads, int64_t writes, Json* detail) {
  SetDetail(detail, Json{{"service", "dynamodb"}, {"read_units", reads}, {"write_units", writes}});
  return static_cast<double>(reads) * prices.dynamodb_read_usd +
         static_cast<double>(writes) * prices.dynamodb_write_usd;
}

double S3Usd(const Prices& prices, int64_t bytes, double days, int64_t puts, Json* detail) {
  double gb_months = static_cast<double>(bytes) / kGiB * days / kDaysPerMonth;
  SetDetail(
      detail,
      Json{{"service", "s3"}, {"bytes", bytes}, {"gb_months", gb_months}, {"put_requests", puts}});
  return gb_months * prices.s3_gb_month_usd + static_cast<double>(puts) * prices.s3_put_usd;
}

Result<std::string> LedgerTime(const std::string& text, const std::string& flag) {
  if (text.empty()) return text;
  int64_t days = 0;
  if (text.size() == 10 && ParseDate(text, &days)) return FormatDate(days) + "T00:00:00Z";
  // 2024-06-01T12:00:00Z, with optional fractional seconds.
  bool ok = text.size() >= 20 && text.size() <= 32 && text.back() == 'Z' && text[10] == 'T' &&
            ParseDate(text.substr(0, 10), &days);
  for (size_t i = 11; ok && i + 1 < text.size(); ++i) {
    char c = text[i];
    ok = (i == 13 || i == 16) ? c == ':' : (i == 19 ? c == '.' : std::isdigit(c) != 0);
  }
  if (!ok) {
    return InvalidArgumentError(
        fmt::format("{} must be a date (2024-06-01) or a UTC time (2024-06-01T12:00:00Z), got '{}'",
                    flag, text));
  }
  return text;
}

Status CheckScope(const std::string& scope) {
  if (scope == "all" || scope == "queries") return Status::Ok();
  for (const char* prefix : {"pipeline:", "table:"}) {
    std::string p(prefix);
    if (scope.rfind(p, 0) == 0 && scope.size() > p.size()) return Status::Ok();
  }
  return InvalidArgumentError(
      fmt::format("scope must be all, queries, pipeline:<name> or table:<name>, got '{}'", scope));
}

Result<std::unique_ptr<Ledger>> Ledger::Open(const std::string& meta_db, const Clock& clock) {
  ENGAGE_ASSIGN_OR_RETURN(lake::Catalog catalog, lake::Catalog::Open(meta_db));
  return std::unique_ptr<Ledger>(new Ledger(std::move(catalog), clock));
}

Status Ledger::Record(lake::LedgerEntry e) {
  if (e.at.empty()) e.at = FormatIsoUtc(clock_.NowMicros());
  if (!std::isfinite(e.cloud_usd) || e.cloud_usd < 0) {
    return InvalidArgumentError(
        fmt::format("{} '{}': its cost is not a finite amount ({}); check "
                    "[prices] in engage.toml",
                    e.kind, e.name, e.cloud_usd));
  }
  return catalog_.RecordCost(e);
}

Status Ledger::SampleStorage(const Prices& prices, int64_t lake_bytes) {
  SqliteDb& db = catalog_.db();
  int64_t today = clock_.NowMicros() / (86400LL * 1000000);
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt last,
                          db.Prepare("SELECT seq, substr(at, 1, 10), detail FROM cost_ledger "
                                     "WHERE kind = 'storage' ORDER BY at DESC, seq DESC LIMIT 1"));
  ENGAGE_ASSIGN_OR_RETURN(bool found, last.Step());
  int64_t from = today;
  int64_t last_bytes = lake_bytes;
  if (found) {
    int64_t day = 0;
    if (ParseDate(last.Text(1), &day)) {
      Json d = Json::parse(last.Text(2), nullptr, false);
      if (d.is_object()) last_bytes = d.value("bytes", lake_bytes);
      if (day == today) {
        ENGAGE_ASSIGN_OR_RETURN(SqliteStmt del,
                                db.Prepare("DELETE FROM cost_ledger WHERE seq = ?"));
        del.Bind(1, last.Int(0));
        ENGAGE_RETURN_IF_ERROR(del.Run());
      } else if (day < today) {
        from = std::max(day + 1, today - kMaxStorageGapDays);
      }
    }
  }
  ENGAGE_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  Status s;
  for (int64_t day = from; day <= today && s.ok(); ++day) {
    lake::LedgerEntry e;
    e.at = FormatDate(day) + "T00:00:00Z";
    e.kind = "storage";
    e.name = "lake";
    int64_t bytes = day == today ? lake_bytes : last_bytes;
    e.cloud_usd = S3Usd(prices, bytes, 1.0, 0, &e.detail);
    s = catalog_.RecordCost(e);
  }
  ENGAGE_RETURN_IF_ERROR(db.Exec(s.ok() ? "COMMIT" : "ROLLBACK"));
  return s;
}

Result<CostReport> Ledger::Report(const CostQuery& query) {
  CostReport r;
  r.query = query;
  ENGAGE_ASSIGN_OR_RETURN(r.query.since, LedgerTime(query.since, "--since"));
  ENGAGE_ASSIGN_OR_RETURN(r.query.until, LedgerTime(query.until, "--until"));
  if (!r.query.since.empty() && !r.query.until.empty() && r.query.until <= r.query.since) {
    return InvalidArgumentError(
        fmt::format("--until ({}) must be after --since ({})", r.query.until, r.query.since));
  }
  ENGAGE_ASSIGN_OR_RETURN(std::string group, GroupExpression(query.by, "c"));
  ENGAGE_ASSIGN_OR_RETURN(std::string parent_group, GroupExpression(query.by, "p"));
  const std::string until = r.query.until.empty() ? "9999" : r.query.until;
  const std::string outer = fmt::format("p.seq IS NULL OR {} IS NOT {}", parent_group, group);
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st,
      catalog_.db().Prepare(
          fmt::format("SELECT {0}, count(*), coalesce(sum(c.cloud_usd), 0), {1} FROM cost_ledger c "
                      "LEFT JOIN cost_ledger p ON c.parent != '' AND p.id = c.parent "
                      "WHERE c.at >= ? AND c.at < ? GROUP BY {0} ORDER BY 3 DESC, 1",
                      group, OuterUsageSums(outer))));
  st.Bind(1, r.query.since).Bind(2, until);
  for (;;) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    CostRow c;
    c.key = st.Text(0);
    c.entries = st.Int(1);
    c.cloud_usd = st.Double(2);
    c.usage = ReadUsage(st, 3);
    r.total_usd += c.cloud_usd;
    r.entries += c.entries;
    r.rows.push_back(std::move(c));
  }
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt top,
      catalog_.db().Prepare(fmt::format(
          "SELECT {} FROM cost_ledger WHERE at >= ? AND at < ? AND parent = ''", kUsageSums)));
  top.Bind(1, r.query.since).Bind(2, until);
  ENGAGE_ASSIGN_OR_RETURN(bool any, top.Step());
  if (any) r.local = ReadUsage(top, 0);
  return r;
}

Result<ExecutionCost> Ledger::ForExecution(const std::string& execution_id) {
  ExecutionCost c;
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt st,
                          catalog_.db().Prepare(fmt::format(
                              "SELECT c.step, count(*), coalesce(sum(c.cloud_usd), 0), {}, "
                              "sum(c.kind = 'execution'), sum(c.kind = 'step') FROM cost_ledger c "
                              "LEFT JOIN cost_ledger p ON c.parent != '' AND p.id = c.parent "
                              "WHERE c.execution_id = ? GROUP BY c.step ORDER BY min(c.seq)",
                              OuterUsageSums("p.seq IS NULL OR p.step IS NOT c.step"))));
  st.Bind(1, execution_id);
  Usage steps;
  for (;;) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    Usage u = ReadUsage(st, 3);
    c.total_usd += st.Double(2);
    if (st.Int(8) > 0 && st.Text(0).empty()) {
      c.local += u;  // the execution's own entries: its whole run
    }
    Json step{{"step", st.Text(0).empty() ? "(transitions)" : st.Text(0)},
              {"entries", st.Int(1)},
              {"cloud_usd", st.Double(2)}};
    step.update(u.ToJson());
    c.steps.push_back(std::move(step));
    if (!st.Text(0).empty()) steps += u;
  }
  if (c.local.wall_seconds == 0) c.local = steps;  // still running: what its steps used so far
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt q, catalog_.db().Prepare("SELECT count(*), coalesce(sum(bytes_read), 0) FROM "
                                          "cost_ledger WHERE execution_id = ? AND kind = 'query'"));
  q.Bind(1, execution_id);
  ENGAGE_ASSIGN_OR_RETURN(bool row, q.Step());
  if (row) {
    c.queries = q.Int(0);
    c.bytes_scanned = q.Int(1);
  }
  return c;
}

Result<double> Ledger::Spent(const std::string& scope, const std::string& since,
                             const std::string& until) {
  std::string param;
  std::string filter = ScopeFilter(scope, &param);
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt st, catalog_.db().Prepare(fmt::format(
                                             "SELECT coalesce(sum(cloud_usd), 0) FROM cost_ledger "
                                             "WHERE at >= ? AND at < ? AND {}",
                                             filter)));
  st.Bind(1, since).Bind(2, until.empty() ? "9999" : until);
  if (!param.empty()) st.Bind(3, param);
  ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? st.Double(0) : 0.0;
}

Json CostReport::ToJson() const {
  Json rows_json = Json::array();
  for (const CostRow& c : rows) {
    Json row{{query.by, c.key}, {"entries", c.entries}, {"cloud_usd", c.cloud_usd}};
    row.update(c.usage.ToJson());
    rows_json.push_back(std::move(row));
  }
  return Json{{"total_usd", total_usd}, {"local", local.ToJson()}, {"rows", std::move(rows_json)},
              {"by", query.by},         {"since", query.since},    {"until", query.until},
              {"entries", entries}};
}

std::string CostReport::ToText() const {
  std::vector<std::vector<std::string>> cells;
  for (const CostRow& c : rows) {
    cells.push_back({Key(c.key), std::to_string(c.entries), Usd(c.cloud_usd),
                     fmt::format("{:.2f}", c.usage.cpu_seconds),
                     fmt::format("{:.2f}", c.usage.wall_seconds), HumanBytes(c.usage.bytes_read),
                     HumanBytes(c.usage.bytes_written)});
  }
  std::string out =
      FormatTable({query.by, "entries", "cloud cost", "cpu s", "wall s", "read", "written"}, cells);
  out += fmt::format(
      "total {} on the cloud stack ({} entries{}{}); here: {:.2f} CPU s, {:.2f} s of work, {} "
      "read, {} written, peak memory {}\n",
      Usd(total_usd), entries, query.since.empty() ? "" : ", since " + query.since,
      query.until.empty() ? "" : ", until " + query.until, local.cpu_seconds, local.wall_seconds,
      HumanBytes(local.bytes_read), HumanBytes(local.bytes_written),
      local.peak_memory_bytes > 0 ? HumanBytes(local.peak_memory_bytes) : "unknown");
  return out;
}

Json ExecutionCost::ToJson() const {
  return Json{{"total_usd", total_usd},
              {"local", local.ToJson()},
              {"queries", queries},
              {"bytes_scanned", bytes_scanned},
              {"steps", steps}};
}

std::string ExecutionCost::ToText() const {
  std::string out =
      fmt::format("cost: {} on the cloud stack; here {:.2f} CPU s, {:.2f} s, {} read, {} written\n",
                  Usd(total_usd), local.cpu_seconds, local.wall_seconds,
                  HumanBytes(local.bytes_read), HumanBytes(local.bytes_written));
  for (const Json& s : steps) {
    out += fmt::format("  {:<24} {:>10}  {:.2f} s\n", s.value("step", ""),
                       Usd(s.value("cloud_usd", 0.0)), s.value("wall_seconds", 0.0));
  }
  return out;
}

}  // namespace engage::monitor
