#include "engage/monitor/checks.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "engage/core/ids.h"
#include "engage/core/text.h"
#include "engage/lake/duck.h"

namespace engage::monitor {

namespace {

using lake::SqlIdent;
using lake::SqlQuote;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS check_runs (
  id TEXT PRIMARY KEY,
  at TEXT NOT NULL,
  table_name TEXT NOT NULL,
  ingest_id TEXT NOT NULL,
  passed INTEGER NOT NULL,
  run TEXT NOT NULL
);)sql";

// The condition a row fails, for the checks on columns.
std::string FailingRows(const CheckSpec& c) {
  const std::string col = c.columns.empty() ? "" : SqlIdent(c.columns.front());
  switch (c.kind) {
    case CheckKind::kNotNull: {
      std::string any;
      for (const auto& name : c.columns) {
        any += fmt::format("{}{} IS NULL", any.empty() ? "" : " OR ", SqlIdent(name));
      }
      return any;
    }
    case CheckKind::kRange: {
      std::string out;
      if (c.min) out = fmt::format("{} < {}", col, *c.min);
      if (c.max) out += fmt::format("{}{} > {}", out.empty() ? "" : " OR ", col, *c.max);
      return out;
    }
    case CheckKind::kAllowed: {
      std::string list;
      for (const auto& v : c.values) list += (list.empty() ? "" : ", ") + SqlQuote(v);
      return fmt::format("{} IS NOT NULL AND CAST({} AS VARCHAR) NOT IN ({})", col, col, list);
    }
    case CheckKind::kRegex:
      return fmt::format("{} IS NOT NULL AND NOT regexp_full_match(CAST({} AS VARCHAR), {})", col,
                         col, SqlQuote(c.pattern));
    default:
      return "false";
  }
}

// Rows of `sql` (one JSON text per row in column 0) as JSON objects.
Result<Json> JsonRows(sql::QueryEngine& engine, const std::string& sql) {
  ENGAGE_ASSIGN_OR_RETURN(lake::DuckResult r, engine.RunTrusted(sql, "check"));
  Json rows = Json::array();
  for (int64_t i = 0; i < r.RowCount(); ++i) {
    auto parsed = ParseJson(r.Str(0, i).value_or("null"), "a failing row", 1 << 20);
    rows.push_back(parsed.ok() ? *parsed : Json(r.Str(0, i).value_or("")));
  }
  return rows;
}

class Runner {
 public:
  Runner(lake::Lake& lake, sql::QueryEngine& engine, const CheckRequest& request)
      : lake_(lake), engine_(engine), request_(request) {}

  // The rows checked: the table's view, or the files one ingest wrote.
  Result<std::string> Source(const TableSpec& table) {
    if (request_.ingest_id.empty()) return SqlIdent(table.name);
    ENGAGE_ASSIGN_OR_RETURN(auto files, lake_.catalog().Files(table.name));
    std::vector<std::string> paths;
    for (const auto& f : files) {
      if (f.ingest_id == request_.ingest_id) paths.push_back(lake_.AbsPath(f.path));
    }
    if (paths.empty()) {
      return NotFoundError(fmt::format(
          "ingest '{}' has no files in table '{}' (see `engage tables {}`; compaction and "
          "retention rewrite or drop an ingest's files)",
          request_.ingest_id, table.name, table.name));
    }
    return fmt::format(
        "(SELECT * FROM read_parquet({}, hive_partitioning = true, hive_types = {{'dt': DATE}}))",
        lake::SqlList(paths));
  }

  CheckResult Run(const TableSpec& table, const CheckSpec& c, const std::string& source) {
    CheckResult r;
    r.table = table.name;
    r.check = c.name;
    r.kind = std::string(CheckKindName(c.kind));
    r.error = c.error;
    Status s = Measure(table, c, source, &r);
    if (!s.ok()) {
      r.ok = false;
      r.failing_rows = 0;
      r.detail = fmt::format("the check could not run: {}", s.message());
    }
    return r;
  }

 private:
  // When the check has failing rows, the first few rows of `rows_sql` (a SELECT) as its examples.
  Status AddExamples(const std::string& rows_sql, CheckResult* r) {
    if (r->failing_rows == 0) return Status::Ok();
    ENGAGE_ASSIGN_OR_RETURN(r->examples,
                            JsonRows(engine_, fmt::format("SELECT to_json(t) FROM ({} LIMIT {}) t",
                                                          rows_sql, request_.examples)));
    return Status::Ok();
  }

  Status Measure(const TableSpec& table, const CheckSpec& c, const std::string& source,
                 CheckResult* r) {
    switch (c.kind) {
      case CheckKind::kNotNull:
      case CheckKind::kRange:
      case CheckKind::kAllowed:
      case CheckKind::kRegex: {
        std::string where = FailingRows(c);
        ENGAGE_ASSIGN_OR_RETURN(
            lake::DuckResult count,
            engine_.RunTrusted(fmt::format("SELECT count(*) FROM {} WHERE {}", source, where),
                               "check"));
        r->failing_rows = count.Int(0, 0);
        ENGAGE_RETURN_IF_ERROR(
            AddExamples(fmt::format("SELECT * FROM {} WHERE {}", source, where), r));
        r->ok = r->failing_rows == 0;
        r->detail = fmt::format("{} row(s) fail: {}", r->failing_rows, where);
        return Status::Ok();
      }
      case CheckKind::kUnique: {
        std::string cols;
        for (const auto& col : c.columns) cols += (cols.empty() ? "" : ", ") + SqlIdent(col);
        std::string dups = fmt::format(
            "SELECT {}, count(*) AS copies FROM {} GROUP BY ALL HAVING count(*) > 1", cols, source);
        ENGAGE_ASSIGN_OR_RETURN(
            lake::DuckResult count,
            engine_.RunTrusted(
                fmt::format("SELECT coalesce(sum(copies), 0)::BIGINT, count(*) FROM ({})", dups),
                "check"));
        r->failing_rows = count.Int(0, 0);
        ENGAGE_RETURN_IF_ERROR(AddExamples(dups + " ORDER BY copies DESC", r));
        r->ok = r->failing_rows == 0;
        r->detail = fmt::format("{} row(s) share {} value(s) of ({})", r->failing_rows,
                                count.Int(1, 0), cols);
        return Status::Ok();
      }
      case CheckKind::kFreshness: {
        std::string time = SqlIdent(table.time_column);
        ENGAGE_ASSIGN_OR_RETURN(
            lake::DuckResult newest,
            engine_.RunTrusted(fmt::format("SELECT max({0})::VARCHAR, "
                                           "epoch_us(max(CAST({0} AS TIMESTAMP))) FROM {1}",
                                           time, source),
                               "check"));
        if (newest.IsNull(1, 0)) {
          r->ok = false;
          r->detail = "no rows: nothing is fresh";
          return Status::Ok();
        }
        double hours = static_cast<double>(lake_.clock().NowMicros() - newest.Int(1, 0)) / 3600e6;
        r->ok = hours <= c.max_age_hours;
        r->failing_rows = r->ok ? 0 : 1;
        r->detail = fmt::format("newest {} is {} ({:.1f} h old; at most {:g} h)", table.time_column,
                                newest.Str(0, 0).value_or("?"), hours, c.max_age_hours);
        return Status::Ok();
      }
      case CheckKind::kRowCountChange: {
        ENGAGE_ASSIGN_OR_RETURN(auto ingests, lake_.catalog().RecentIngests(1000));
        std::vector<lake::IngestRecord> mine;
        for (auto& i : ingests) {
          if (i.table == table.name && i.rows_accepted > 0) mine.push_back(std::move(i));
        }
        // Newest first: the ingest checked, then the one before it.
        auto at = request_.ingest_id.empty()
                      ? mine.begin()
                      : std::find_if(mine.begin(), mine.end(), [&](const lake::IngestRecord& i) {
                          return i.id == request_.ingest_id;
                        });
        if (at == mine.end() || at + 1 == mine.end()) {
          r->detail = "needs two ingests with rows to compare";
          return Status::Ok();
        }
        double change = 100.0 * static_cast<double>(at->rows_accepted - (at + 1)->rows_accepted) /
                        static_cast<double>((at + 1)->rows_accepted);
        r->ok = std::abs(change) <= c.max_change_percent;
        r->failing_rows = r->ok ? 0 : at->rows_accepted;
        r->detail = fmt::format(
            "ingest {} has {} rows, {:+.1f}% against ingest {} ({} rows); at "
            "most ±{:g}%",
            at->id, at->rows_accepted, change, (at + 1)->id, (at + 1)->rows_accepted,
            c.max_change_percent);
        return Status::Ok();
      }
      case CheckKind::kRowCount: {
        // A `where` is the operator's SQL: run as user SQL (read-only, the lake only; no scan
        // cutoff, a check reads what it must).
        int64_t rows = 0;
        if (c.where.empty()) {
          ENGAGE_ASSIGN_OR_RETURN(
              lake::DuckResult count,
              engine_.RunTrusted(fmt::format("SELECT count(*) FROM {}", source), "check"));
          rows = count.Int(0, 0);
        } else {
          sql::QueryRequest q;
          q.source = "check";
          q.max_scan_bytes = 0;
          q.sql = fmt::format("SELECT count(*) FROM {} WHERE ({})", source, c.where);
          ENGAGE_ASSIGN_OR_RETURN(sql::QueryResult count, engine_.Run(q));
          rows = count.rows.empty() ? 0 : count.rows[0][0].get<int64_t>();
        }
        r->ok = (!c.min || static_cast<double>(rows) >= *c.min) &&
                (!c.max || static_cast<double>(rows) <= *c.max);
        r->failing_rows = r->ok ? 0 : rows;
        r->detail = fmt::format(
            "{} row(s){}; expected {}{}{}", rows, c.where.empty() ? "" : " where " + c.where,
            c.min ? fmt::format("at least {:g}", *c.min) : "", c.min && c.max ? " and " : "",
            c.max ? fmt::format("at most {:g}", *c.max) : "");
        return Status::Ok();
      }
      case CheckKind::kHistoryDays: {
        std::string time = SqlIdent(table.time_column);
        ENGAGE_ASSIGN_OR_RETURN(
            lake::DuckResult span,
            engine_.RunTrusted(
                fmt::format(
                    "SELECT min(CAST({0} AS DATE))::VARCHAR, max(CAST({0} AS DATE))::VARCHAR, "
                    "date_diff('day', min(CAST({0} AS DATE)), max(CAST({0} AS DATE))) + 1 "
                    "FROM {1}",
                    time, source),
                "check"));
        int64_t days = span.IsNull(2, 0) ? 0 : span.Int(2, 0);
        r->ok = static_cast<double>(days) >= c.min.value_or(0);
        r->failing_rows = 0;
        r->detail = days == 0 ? "no rows: no history"
                              : fmt::format("{} day(s) of history ({} .. {}); at least {:g} needed",
                                            days, span.Str(0, 0).value_or("?"),
                                            span.Str(1, 0).value_or("?"), c.min.value_or(0));
        return Status::Ok();
      }
      case CheckKind::kVolumeChange: {
        // The newest `days` days of the data (up to its newest row, not the wall clock) against
        // the `days` before them.
        std::string time = SqlIdent(table.time_column);
        ENGAGE_ASSIGN_OR_RETURN(
            lake::DuckResult v,
            engine_.RunTrusted(
                fmt::format("WITH t AS (SELECT CAST({0} AS TIMESTAMP) AS ts FROM {1}), "
                            "e AS (SELECT max(ts) AS newest FROM t) "
                            "SELECT count(*) FILTER (WHERE ts > newest - INTERVAL ({2}) DAY), "
                            "count(*) FILTER (WHERE ts <= newest - INTERVAL ({2}) DAY AND "
                            "ts > newest - INTERVAL ({3}) DAY) FROM t, e",
                            time, source, c.days, 2 * c.days),
                "check"));
        int64_t last = v.Int(0, 0), before = v.Int(1, 0);
        if (before == 0) {
          r->detail = fmt::format(
              "{} row(s) in the newest {} day(s) and none in the {} before: "
              "nothing to compare",
              last, c.days, c.days);
          return Status::Ok();
        }
        double change = 100.0 * static_cast<double>(last - before) / static_cast<double>(before);
        r->ok = std::abs(change) <= c.max_change_percent;
        r->failing_rows = r->ok ? 0 : last;
        r->detail = fmt::format(
            "{} row(s) in the newest {} day(s) vs {} the {} before ({:+.1f}%; "
            "at most ±{:g}%)",
            last, c.days, before, c.days, change, c.max_change_percent);
        return Status::Ok();
      }
      case CheckKind::kIngestRejects: {
        std::optional<lake::IngestRecord> ingest;
        if (!request_.ingest_id.empty()) {
          ENGAGE_ASSIGN_OR_RETURN(ingest, lake_.catalog().FindIngest(request_.ingest_id));
        } else {
          ENGAGE_ASSIGN_OR_RETURN(auto recent, lake_.catalog().RecentIngests(1000));
          for (auto& i : recent) {
            if (i.table == table.name) {
              ingest = std::move(i);
              break;
            }
          }
        }
        if (!ingest || ingest->rows_read == 0) {
          r->detail = "no ingest with rows to judge";
          return Status::Ok();
        }
        double percent = 100.0 * static_cast<double>(ingest->rows_rejected) /
                         static_cast<double>(ingest->rows_read);
        r->ok = percent <= c.max_reject_percent;
        r->failing_rows = ingest->rows_rejected;
        r->detail =
            fmt::format("ingest {} rejected {} of {} row(s) ({:.2f}%; at most {:g}%)", ingest->id,
                        ingest->rows_rejected, ingest->rows_read, percent, c.max_reject_percent);
        return Status::Ok();
      }
      case CheckKind::kSql: {
        // Written by the operator in engage.toml, and still run as user SQL: read-only, the
        // lake's tables only, metered.
        sql::QueryRequest q;
        q.source = "check";
        q.sql = fmt::format("SELECT count(*) FROM ({}) __failing", c.sql);
        ENGAGE_ASSIGN_OR_RETURN(sql::QueryResult count, engine_.Run(q));
        r->failing_rows = count.rows.empty() ? 0 : count.rows[0][0].get<int64_t>();
        if (r->failing_rows > 0) {
          q.sql = fmt::format("SELECT * FROM ({}) __failing LIMIT {}", c.sql, request_.examples);
          ENGAGE_ASSIGN_OR_RETURN(sql::QueryResult rows, engine_.Run(q));
          for (const Json& row : rows.rows) {
            Json obj = Json::object();
            for (size_t k = 0; k < rows.columns.size() && k < row.size(); ++k) {
              obj[rows.columns[k]] = row[k];
            }
            r->examples.push_back(std::move(obj));
          }
        }
        r->ok = r->failing_rows == 0;
        r->detail = fmt::format("{} row(s) returned by the check's query", r->failing_rows);
        return Status::Ok();
      }
    }
    return Status::Ok();
  }

  lake::Lake& lake_;
  sql::QueryEngine& engine_;
  const CheckRequest& request_;
};

}  // namespace

Json CheckResult::ToJson() const {
  return Json{{"table", table},
              {"check", check},
              {"kind", kind},
              {"severity", error ? "error" : "warning"},
              {"ok", ok},
              {"failing_rows", failing_rows},
              {"examples", examples},
              {"detail", detail}};
}

Json CheckRun::ToJson() const {
  Json list = Json::array();
  for (const auto& c : checks) list.push_back(c.ToJson());
  return Json{{"passed", passed}, {"checks", std::move(list)}, {"id", id}, {"at", at},
              {"table", table},   {"ingest", ingest_id}};
}

std::string CheckRun::ToText() const {
  if (checks.empty()) {
    return fmt::format(
        "no checks are declared{}: add [[tables.<table>.checks]] entries to "
        "engage.toml (see docs/monitor.md)\n",
        table.empty() ? "" : fmt::format(" on '{}'", table));
  }
  std::vector<std::vector<std::string>> rows;
  int64_t failed = 0, warned = 0;
  for (const auto& c : checks) {
    failed += !c.ok && c.error ? 1 : 0;
    warned += !c.ok && !c.error ? 1 : 0;
    rows.push_back({c.table, c.check, c.error ? "error" : "warning", c.ok ? "ok" : "FAILED",
                    std::to_string(c.failing_rows), c.detail});
  }
  std::string out =
      FormatTable({"table", "check", "severity", "result", "failing rows", "detail"}, rows);
  for (const auto& c : checks) {
    if (c.ok || c.examples.empty()) continue;
    out += fmt::format("\n{}.{}: first failing rows\n", c.table, c.check);
    for (const Json& e : c.examples) out += "  " + DumpJson(e) + "\n";
  }
  return out + fmt::format("\n{}: {} check(s), {} failed, {} warning(s){}; run {}\n",
                           passed ? "passed" : "FAILED", checks.size(), failed, warned,
                           ingest_id.empty() ? "" : fmt::format(" on ingest {}", ingest_id), id);
}

Result<CheckRun> RunChecks(lake::Lake& lake, sql::QueryEngine& engine,
                           const CheckRequest& request) {
  std::vector<const TableSpec*> tables;
  if (!request.table.empty()) {
    ENGAGE_ASSIGN_OR_RETURN(const TableSpec* t, lake.config().Table(request.table));
    tables.push_back(t);
  } else {
    for (const auto& [name, spec] : lake.config().tables) {
      if (!spec.checks.empty()) tables.push_back(&spec);
    }
  }
  if (!request.ingest_id.empty()) {
    ENGAGE_ASSIGN_OR_RETURN(std::optional<lake::IngestRecord> it,
                            lake.catalog().FindIngest(request.ingest_id));
    if (!it) {
      return NotFoundError(
          fmt::format("no ingest '{}' (engage tables lists the tables; their "
                      "ingests are in meta.db's ingests)",
                      request.ingest_id));
    }
    if (!request.table.empty() && it->table != request.table) {
      return InvalidArgumentError(fmt::format("ingest '{}' loaded table '{}', not '{}'",
                                              request.ingest_id, it->table, request.table));
    }
    ENGAGE_ASSIGN_OR_RETURN(const TableSpec* t, lake.config().Table(it->table));
    tables = {t};
  }
  CheckRun run;
  run.id = NewId(lake.clock());
  run.at = FormatIsoUtc(lake.clock().NowMicros());
  run.table = request.table;
  run.ingest_id = request.ingest_id;
  Runner runner(lake, engine, request);
  for (const TableSpec* t : tables) {
    const std::vector<CheckSpec>& checks =
        request.checks != nullptr && !request.table.empty() ? *request.checks : t->checks;
    if (checks.empty()) continue;
    ENGAGE_ASSIGN_OR_RETURN(std::string source, runner.Source(*t));
    for (const CheckSpec& c : checks) {
      run.checks.push_back(runner.Run(*t, c, source));
      if (!run.checks.back().ok && c.error) run.passed = false;
    }
  }
  return run;
}

Result<std::unique_ptr<CheckStore>> CheckStore::Open(const std::string& meta_db) {
  ENGAGE_ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(meta_db));
  ENGAGE_RETURN_IF_ERROR(db.Exec(kSchema));
  return std::unique_ptr<CheckStore>(new CheckStore(std::move(db)));
}

Status CheckStore::Record(const CheckRun& run) {
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db_.Prepare("INSERT INTO check_runs (id, at, table_name, ingest_id, passed, run) VALUES "
                  "(?, ?, ?, ?, ?, ?)"));
  st.Bind(1, run.id)
      .Bind(2, run.at)
      .Bind(3, run.table)
      .Bind(4, run.ingest_id)
      .Bind(5, static_cast<int64_t>(run.passed ? 1 : 0))
      .Bind(6, DumpJson(run.ToJson()));
  return st.Run();
}

Result<std::vector<CheckRun>> CheckStore::History(int64_t limit) {
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt st,
                          db_.Prepare("SELECT run FROM check_runs ORDER BY id DESC LIMIT ?"));
  st.Bind(1, limit);
  std::vector<CheckRun> out;
  for (;;) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    ENGAGE_ASSIGN_OR_RETURN(Json j, ParseJson(st.Text(0), "a stored check run"));
    CheckRun r;
    r.id = j.value("id", "");
    r.at = j.value("at", "");
    r.table = j.value("table", "");
    r.ingest_id = j.value("ingest", "");
    r.passed = j.value("passed", false);
    for (const Json& c : j.value("checks", Json::array())) {
      CheckResult x;
      x.table = c.value("table", "");
      x.check = c.value("check", "");
      x.kind = c.value("kind", "");
      x.error = c.value("severity", "error") == "error";
      x.ok = c.value("ok", false);
      x.failing_rows = c.value("failing_rows", int64_t{0});
      x.examples = c.value("examples", Json::array());
      x.detail = c.value("detail", "");
      r.checks.push_back(std::move(x));
    }
    out.push_back(std::move(r));
  }
  return out;
}

Json CheckHistoryJson(const std::vector<CheckRun>& runs) {
  Json arr = Json::array();
  for (const auto& r : runs) arr.push_back(r.ToJson());
  return Json{{"runs", std::move(arr)}};
}

std::string CheckHistoryTable(const std::vector<CheckRun>& runs) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : runs) {
    std::string failed;
    for (const auto& c : r.checks) {
      if (!c.ok) failed += (failed.empty() ? "" : ", ") + c.table + "." + c.check;
    }
    rows.push_back({r.at, r.table.empty() ? "(all)" : r.table,
                    r.ingest_id.empty() ? "-" : r.ingest_id, r.passed ? "passed" : "FAILED",
                    std::to_string(r.checks.size()), failed.empty() ? "-" : failed});
  }
  return FormatTable({"at", "table", "ingest", "result", "checks", "failed"}, rows);
}

}  // namespace engage::monitor
