#include "cli/commands.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

#include "engage/app/app.h"
#include "engage/app/monitoring.h"
#include "engage/core/clock.h"
#include "engage/core/home.h"
#include "engage/core/json.h"
#include "engage/core/progress.h"
#include "engage/gen/generator.h"
#include "engage/lake/ingest.h"
#include "engage/lake/lake.h"
#include "engage/lake/maintenance.h"
#include "engage/sql/query.h"

namespace engage::cli {

void PrintJson(const Json& j) { std::printf("%s\n", DumpJson(j, 2).c_str()); }

void Emit(bool json, const Json& j, const std::function<void()>& text) {
  if (json) {
    PrintJson(j);
  } else {
    text();
  }
}

void KeepAlive(std::shared_ptr<void> p) {
  static std::vector<std::shared_ptr<void>> kept;
  kept.push_back(std::move(p));
}

void OnRun(CLI::App* cmd, std::function<Status()>* action, std::function<Status()> run) {
  cmd->callback([action, run = std::move(run)] { *action = run; });
}

Result<std::unique_ptr<lake::Lake>> OpenLake(const GlobalOptions& g, bool writer) {
  lake::LakeOptions opts;
  opts.writer = writer;  // recovery is logged as a warning
  return lake::Lake::Open(ResolveHome(g.home), opts);
}

Result<std::unique_ptr<app::App>> OpenApp(const GlobalOptions& g) {
  return app::App::Open(ResolveHome(g.home));
}

namespace {

// --- init / gen / ingest ----------------------------------------------------------------------
void AddInit(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand("init", "Create an Engage home (engage.toml, lake/, meta.db)");
  struct O {
    bool force = false, json = false;
  };
  auto& o = Keep<O>();
  cmd->add_flag("--force", o.force, "Rewrite engage.toml even if the home exists (data is kept)");
  cmd->add_flag("--json", o.json, "Print the result as JSON");
  OnRun(cmd, action, [&g, &o]() -> Status {
    HomePaths home = ResolveHome(g.home);
    ENGAGE_RETURN_IF_ERROR(lake::Lake::Init(home, o.force));
    Emit(o.json, {{"home", home.root}, {"config", home.config()}}, [&] {
      std::printf("initialised Engage home at %s\n  config: %s\n", home.root.c_str(),
                  home.config().c_str());
    });
    return Status::Ok();
  });
}

void AddGen(CLI::App& app, GlobalOptions&, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand(
      "gen", "Generate realistic customer events from a known latent process (with truth)");
  struct O {
    gen::GenOptions gen;
    std::string format = "parquet", end;
    bool json = false;
  };
  auto& o = Keep<O>();
  cmd->add_option("--customers", o.gen.customers, "Number of customers")->required();
  cmd->add_option("--days", o.gen.days, "Length of the window in days");
  cmd->add_option("--seed", o.gen.seed, "Random seed (same seed, same data)");
  cmd->add_option("--out", o.gen.out_dir, "Output directory");
  cmd->add_option("--format", o.format, "parquet, csv or jsonl");
  cmd->add_option("--batch", o.gen.customers_per_batch, "Customers per output file");
  cmd->add_option("--end", o.end,
                  "Day after the last day of data, YYYY-MM-DD (default: today, UTC); fix it for "
                  "byte-identical output across days");
  cmd->add_flag("--json", o.json, "Print the report as JSON");
  OnRun(cmd, action, [&o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(o.gen.format, gen::ParseOutputFormat(o.format));
    ENGAGE_ASSIGN_OR_RETURN(o.gen.end_day,
                            gen::ParseEndDay(o.end, SystemClock::Default().NowMicros()));
    Progress progress("generating", o.gen.customers, "customers");
    ENGAGE_ASSIGN_OR_RETURN(auto r, gen::Generate(o.gen, [&](int64_t n) { progress.Set(n); }));
    progress.Finish();
    Emit(o.json, r.ToJson(), [&r] { std::fputs(r.ToText().c_str(), stdout); });
    return Status::Ok();
  });
}

void AddIngest(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand(
      "ingest", "Validate and load CSV/JSONL/Parquet files into a table's partitioned lake");
  struct O {
    lake::IngestRequest req;
    std::string format = "auto";
    bool json = false;
  };
  auto& o = Keep<O>();
  cmd->add_option("table", o.req.table, "Table name (as in engage.toml)")->required();
  cmd->add_option("files", o.req.inputs, "Files or glob patterns (CSV may be .gz)")->required();
  cmd->add_option("--id", o.req.ingest_id,
                  "Ingest id (default: generated); reusing one is a no-op");
  cmd->add_option("--format", o.format, "auto (by extension), csv, jsonl or parquet");
  cmd->add_flag("--json", o.json, "Print the report as JSON");
  OnRun(cmd, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(o.req.format, lake::ParseSourceFormat(o.format));
    ENGAGE_ASSIGN_OR_RETURN(auto l, OpenLake(g, /*writer=*/true));
    // The cost ledger and budgets only: no query engine to start for an ingest.
    app::Monitoring monitoring(ResolveHome(g.home), SystemClock::Default());
    StatusLine line;
    auto report = app::IngestRecorded(&monitoring, *l, o.req, [&line](const std::string& stage) {
      line.Show(stage + " ...", true);
    });
    line.Finish();
    ENGAGE_RETURN_IF_ERROR(report.status());
    Emit(o.json, report->ToJson(), [&] { std::fputs(report->ToText().c_str(), stdout); });
    return Status::Ok();
  });
}

// --- query ------------------------------------------------------------------------------------
void AddQuery(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand(
      "query", "Run read-only SQL over the lake, with bytes scanned and cost before and after");
  struct O {
    sql::QueryRequest req;
    std::string file;
    bool json = false, csv = false;
    std::optional<int64_t> max_scan, timeout, max_rows;
  };
  auto& o = Keep<O>();
  cmd->add_option("sql", o.req.sql,
                  "One SELECT statement (- reads it from stdin); tables are views over the lake");
  cmd->add_option("--file,-f", o.file, "Read the SQL from this file (- for stdin)");
  cmd->add_flag("--json", o.json, "Print one JSON object (columns, every row, bytes, cost, ...)");
  cmd->add_flag("--csv", o.csv,
                "Print every row as CSV (RFC 4180 quoting; the cost report goes to stderr)");
  cmd->add_option("--max-rows", o.max_rows,
                  "Rows the table shows, then how many more there are (default 40 on a "
                  "terminal, all otherwise; 0 = all)")
      ->check(CLI::Range(int64_t{0}, int64_t{1'000'000'000}));
  cmd->add_flag("--dry-run", o.req.dry_run, "Only estimate the bytes to scan and the cost");
  cmd->add_option("--max-scan-bytes", o.max_scan,
                  "Refuse the query if its estimate exceeds this (0 = no cutoff; default from "
                  "engage.toml [query] max_scan_bytes)");
  cmd->add_option("--timeout", o.timeout,
                  "Stop the query after this many seconds (0 = never; default from engage.toml "
                  "[query] timeout_seconds, else 600); exit 8 when it is stopped")
      ->check(CLI::Range(int64_t{0}, int64_t{31'536'000}));
  OnRun(cmd, action, [&g, &o]() -> Status {
    if (o.json && o.csv) return InvalidArgumentError("--json and --csv are exclusive");
    ENGAGE_ASSIGN_OR_RETURN(o.req.sql, sql::SqlFromArguments(o.req.sql, o.file));
    o.req.max_scan_bytes = o.max_scan;
    ENGAGE_ASSIGN_OR_RETURN(auto application, OpenApp(g));
    ENGAGE_ASSIGN_OR_RETURN(auto reads, application->reads().Current());
    int64_t seconds = o.timeout.value_or(
        reads->config().query.timeout_seconds.value_or(sql::kDefaultCliQueryTimeoutSeconds));
    o.req.timeout_ms = seconds * 1000;
    ENGAGE_ASSIGN_OR_RETURN(auto r, reads->query().Run(o.req));
    // --csv: every row on stdout, the cost report on stderr. A terminal shows the first rows and
    // how many more there are, like DuckDB's shell.
    int64_t shown = o.max_rows.value_or(::isatty(STDOUT_FILENO) ? 40 : 0);
    Emit(o.json, r.ToJson(), [&] {
      std::fputs(o.csv ? r.ToCsv().c_str() : r.dry_run ? "" : r.Table(shown).c_str(), stdout);
      std::fprintf(o.csv ? stderr : stdout, "%s\n", r.Summary().c_str());
    });
    return Status::Ok();
  });
}

// --- tables -----------------------------------------------------------------------------------
void AddTables(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand("tables", "List tables: schema, partitions, rows, bytes");
  struct O {
    std::string name;
    bool json = false;
  };
  auto& o = Keep<O>();
  cmd->add_option("table", o.name, "Show one table's schema and partitions");
  cmd->add_flag("--json", o.json, "Print as JSON");
  OnRun(cmd, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto l, OpenLake(g, /*writer=*/false));
    if (!o.name.empty()) {
      ENGAGE_ASSIGN_OR_RETURN(auto info, l->Table(o.name));
      ENGAGE_ASSIGN_OR_RETURN(auto parts, l->catalog().Partitions(o.name));
      Emit(o.json, lake::DescribeTableJson(info, parts),
           [&] { std::fputs(lake::DescribeTable(info, parts).c_str(), stdout); });
      return Status::Ok();
    }
    ENGAGE_ASSIGN_OR_RETURN(auto tables, l->Tables());
    Json arr = Json::array();
    for (const auto& t : tables) arr.push_back(t.ToJson());
    Emit(o.json, {{"tables", arr}}, [&] { std::fputs(lake::TablesTable(tables).c_str(), stdout); });
    return Status::Ok();
  });
}

// --- retention / compact / history ------------------------------------------------------------
void AddRetention(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand("retention", "Retention of old partitions");
  cmd->require_subcommand(1);
  auto* apply = cmd->add_subcommand(
      "apply", "Drop partitions older than each table's retention_days (recorded in meta.db)");
  struct O {
    std::string table;
    bool dry = false, json = false;
  };
  auto& o = Keep<O>();
  apply->add_option("--table", o.table, "Only this table");
  apply->add_flag("--dry-run", o.dry, "Only list what would be dropped");
  apply->add_flag("--json", o.json, "Print as JSON");
  OnRun(apply, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto l, OpenLake(g, /*writer=*/true));
    ENGAGE_ASSIGN_OR_RETURN(auto r, lake::ApplyRetention(*l, o.table, o.dry));
    Emit(o.json, r.ToJson(), [&r] { std::fputs(r.ToText().c_str(), stdout); });
    return Status::Ok();
  });
}

void AddCompact(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand("compact", "Merge each partition's small files into one");
  struct O {
    std::string table;
    int64_t min_files = 2;
    bool json = false;
  };
  auto& o = Keep<O>();
  cmd->add_option("table", o.table, "Table to compact")->required();
  cmd->add_option("--min-files", o.min_files, "Compact partitions with at least this many files");
  cmd->add_flag("--json", o.json, "Print as JSON");
  OnRun(cmd, action, [&g, &o]() -> Status {
    if (o.min_files < 2) return InvalidArgumentError("--min-files must be at least 2");
    ENGAGE_ASSIGN_OR_RETURN(auto l, OpenLake(g, /*writer=*/true));
    ENGAGE_ASSIGN_OR_RETURN(auto r, lake::Compact(*l, o.table, o.min_files));
    Emit(o.json, r.ToJson(), [&r] { std::fputs(r.ToText().c_str(), stdout); });
    return Status::Ok();
  });
}

void AddHistory(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand("history", "Show recent queries with bytes scanned and cost");
  struct O {
    int64_t limit = 20;
    bool json = false;
  };
  auto& o = Keep<O>();
  cmd->add_option("-n,--limit", o.limit, "How many")
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000}));
  cmd->add_flag("--json", o.json, "Print as JSON");
  OnRun(cmd, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto l, OpenLake(g, /*writer=*/false));
    ENGAGE_ASSIGN_OR_RETURN(auto h, l->catalog().QueryHistory(o.limit));
    Emit(o.json, lake::QueryHistoryJson(h),
         [&h] { std::fputs(lake::QueryHistoryTable(h).c_str(), stdout); });
    return Status::Ok();
  });
}

}  // namespace

void RegisterCommands(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  // Every option shows its default (the value its options struct starts with) in --help; an
  // option whose default is worked out later is a std::optional and shows none.
  app.option_defaults()->always_capture_default();
  app.add_option("--home", g.home, "Engage home (default: $ENGAGE_HOME or ./engage-home)");
  app.add_flag("-v,--verbose", g.verbose, "Log debug messages to stderr");
  AddInit(app, g, action);
  AddGen(app, g, action);
  AddIngest(app, g, action);
  AddQuery(app, g, action);
  AddTables(app, g, action);
  AddRetention(app, g, action);
  AddCompact(app, g, action);
  AddHistory(app, g, action);
  RegisterMonitorCommands(app, g, action);
  RegisterFlowCommands(app, g, action);
  RegisterMlCommands(app, g, action);
  RegisterTrainCommands(app, g, action);
  RegisterServeCommands(app, g, action);
  RegisterKeysCommands(app, g, action);
}

}  // namespace engage::cli
