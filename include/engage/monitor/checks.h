// Data-quality checks declared on tables ([[tables.T.checks]] in engage.toml, see CheckSpec):
// run on a whole table or on the files of one ingest, each with its failing rows counted and a
// few shown, and every run stored in meta.db (`engage check`, `engage check --history`).
//
//   ENGAGE_ASSIGN_OR_RETURN(CheckRun run, RunChecks(lake, engine, {.table = "events"}));
//   ENGAGE_RETURN_IF_ERROR(store->Record(run));
//
// A check whose own SQL fails (a bad regex, a custom query with an error) is a failed check
// naming the error, so the other checks still run and the run is still recorded.
//
// Thread-safety: RunChecks uses the engine (one query at a time) and the lake's catalog (the
// calling thread's); a CheckStore may be used from one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engage/core/clock.h"
#include "engage/core/json.h"
#include "engage/core/sqlite.h"
#include "engage/core/status.h"
#include "engage/lake/lake.h"
#include "engage/sql/query.h"

namespace engage::monitor {

struct CheckResult {
  std::string table;
  std::string check;  // its name
  std::string kind;   // not_null, unique, ...
  bool error = true;  // severity: error (fails the run) or warning
  bool ok = true;
  int64_t failing_rows = 0;
  Json examples = Json::array();  // up to a few failing rows, as JSON objects
  std::string detail;             // what was measured, or why the check could not run
  // {"table", "check", "kind", "severity", "ok", "failing_rows", "examples", "detail"}
  Json ToJson() const;
};

struct CheckRun {
  std::string id;         // time-ordered id
  std::string at;         // ISO-8601 UTC
  std::string table;      // "" for every table
  std::string ingest_id;  // "" for whole tables
  bool passed = true;     // no error-severity check failed
  std::vector<CheckResult> checks;
  // {"passed", "checks": [...], "id", "at", "table", "ingest"}
  Json ToJson() const;
  // A table of the checks (table, check, severity, result, failing rows, detail) and a verdict.
  std::string ToText() const;
};

struct CheckRequest {
  std::string table;      // "" = every table with checks
  std::string ingest_id;  // "" = the whole table; else only the files of this ingest
  int examples = 5;       // failing rows shown per check
  // Run these instead of the table's declared checks (`table` must be set), e.g. the default
  // engagement checks when the events table declares none.
  const std::vector<CheckSpec>* checks = nullptr;
};

// Runs the checks `request` selects. kNotFound for an unknown table or ingest (naming it);
// kInvalidArgument for an ingest of another table than `request.table`.
Result<CheckRun> RunChecks(lake::Lake& lake, sql::QueryEngine& engine, const CheckRequest& request);

// The check runs of a home (meta.db's check_runs).
class CheckStore {
 public:
  static Result<std::unique_ptr<CheckStore>> Open(const std::string& meta_db);
  Status Record(const CheckRun& run);
  // The newest `limit` runs, newest first.
  Result<std::vector<CheckRun>> History(int64_t limit);

 private:
  explicit CheckStore(SqliteDb db) : db_(std::move(db)) {}
  SqliteDb db_;
};

// Runs as a table for people (at, table, ingest, passed, failed checks) and as
// {"runs": [CheckRun::ToJson()...]}.
std::string CheckHistoryTable(const std::vector<CheckRun>& runs);
Json CheckHistoryJson(const std::vector<CheckRun>& runs);

}  // namespace engage::monitor
