#include "cli/commands.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "engage/app/app.h"
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

// Prints rows as an aligned text table.
void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(header.size());
  for (size_t c = 0; c < header.size(); ++c) w[c] = header[c].size();
  for (const auto& r : rows) {
    for (size_t c = 0; c < r.size() && c < w.size(); ++c)
      w[c] = std::max(w[c], std::min<size_t>(r[c].size(), 60));
  }
  auto line = [&](const std::vector<std::string>& r) {
    std::string out;
    for (size_t c = 0; c < w.size(); ++c) {
      std::string cell = c < r.size() ? r[c] : "";
      if (cell.size() > 60) cell = cell.substr(0, 57) + "...";
      out += fmt::format("{:<{}}", cell, w[c]);
      if (c + 1 < w.size()) out += "  ";
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    std::printf("%s\n", out.c_str());
  };
  line(header);
  std::vector<std::string> sep;
  for (size_t x : w) sep.push_back(std::string(x, '-'));
  line(sep);
  for (const auto& r : rows) line(r);
}

namespace {

std::string HumanBytes(int64_t b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB", "PB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1000 && u < 5) {
    v /= 1000;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.1f} {}", v, units[u]);
}

std::string Usd(double v) {
  if (v == 0) return "$0";
  if (v < 0.01) return fmt::format("${:.6f}", v);
  return fmt::format("${:.4f}", v);
}

std::string CellText(const Json& v) {
  if (v.is_null()) return "NULL";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return fmt::format("{}", v.get<double>());
  return DumpJson(v);
}

}  // namespace

Result<std::unique_ptr<lake::Lake>> OpenLake(const GlobalOptions& g, bool writer) {
  lake::LakeOptions opts;
  opts.writer = writer;
  auto l = lake::Lake::Open(ResolveHome(g.home), opts);
  if (l.ok() && writer) {
    const auto& r = (*l)->recovery();
    if (r.staging_dirs_removed + r.orphan_files_removed + r.orphan_quarantine_removed > 0) {
      std::fprintf(stderr,
                   "recovered from an interrupted run: removed %ld staging dir(s), %ld "
                   "unpublished file(s), %ld orphan quarantine file(s)\n",
                   static_cast<long>(r.staging_dirs_removed),
                   static_cast<long>(r.orphan_files_removed),
                   static_cast<long>(r.orphan_quarantine_removed));
    }
  }
  return l;
}

Result<std::unique_ptr<app::App>> OpenApp(const GlobalOptions& g) {
  return app::App::Open(ResolveHome(g.home));
}

namespace {

bool StderrIsTty() { return ::isatty(STDERR_FILENO) == 1; }

// --- init -------------------------------------------------------------------------------------
void AddInit(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand("init", "Create an Engage home (engage.toml, lake/, meta.db)");
  auto force = std::make_shared<bool>(false);
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--force", *force, "Rewrite engage.toml even if the home exists (data is kept)");
  cmd->add_flag("--json", *json, "Print the result as JSON");
  cmd->callback([&g, action, force, json] {
    *action = [&g, force, json]() -> Status {
      HomePaths home = ResolveHome(g.home);
      ENGAGE_RETURN_IF_ERROR(lake::Lake::Init(home, *force));
      if (*json) {
        PrintJson({{"home", home.root}, {"config", home.config()}});
      } else {
        std::printf("initialised Engage home at %s\n  config: %s\n", home.root.c_str(),
                    home.config().c_str());
      }
      return Status::Ok();
    };
  });
}

// --- gen --------------------------------------------------------------------------------------
void AddGen(CLI::App& app, GlobalOptions&, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand(
      "gen", "Generate realistic customer events from a known latent process (with truth)");
  auto opts = std::make_shared<gen::GenOptions>();
  auto format = std::make_shared<std::string>("parquet");
  auto json = std::make_shared<bool>(false);
  cmd->add_option("--customers", opts->customers, "Number of customers")->required();
  cmd->add_option("--days", opts->days, "Length of the window in days")->capture_default_str();
  cmd->add_option("--seed", opts->seed, "Random seed (same seed, same data)")
      ->capture_default_str();
  cmd->add_option("--out", opts->out_dir, "Output directory")->capture_default_str();
  cmd->add_option("--format", *format, "parquet, csv or jsonl")->capture_default_str();
  cmd->add_option("--batch", opts->customers_per_batch, "Customers per output file")
      ->capture_default_str();
  auto end = std::make_shared<std::string>();
  cmd->add_option("--end", *end,
                  "Day after the last day of data, YYYY-MM-DD (default: today, UTC); fix it for "
                  "byte-identical output across days");
  cmd->add_flag("--json", *json, "Print the report as JSON");
  cmd->callback([action, opts, format, json, end] {
    *action = [opts, format, json, end]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(opts->format, gen::ParseOutputFormat(*format));
      if (end->empty()) {
        opts->end_day = SystemClock::Default().NowMicros() / (86400LL * 1000000);
      } else if (!ParseDate(*end, &opts->end_day)) {
        return InvalidArgumentError(fmt::format("--end '{}' is not a date (YYYY-MM-DD)", *end));
      }
      Progress progress("generating", opts->customers, "customers");
      ENGAGE_ASSIGN_OR_RETURN(auto report,
                              gen::Generate(*opts, [&](int64_t done) { progress.Set(done); }));
      progress.Finish();
      if (*json) {
        PrintJson(report.ToJson());
        return Status::Ok();
      }
      std::printf(
          "generated %ld customers, %ld events (%ld purchases) for %s .. %s in %.1f s "
          "(%.2fM events/s)\n  output: %s (%ld files, %s)\n  alive at end: %ld, mean true "
          "P(purchase in next 30 days): %.3f, oracle AUC: %.3f (knows the hidden state), best "
          "AUC from the events: %.3f\n",
          static_cast<long>(report.customers), static_cast<long>(report.events),
          static_cast<long>(report.purchases), report.first_day.c_str(), report.last_day.c_str(),
          report.elapsed_s,
          report.elapsed_s > 0 ? static_cast<double>(report.events) / report.elapsed_s / 1e6 : 0.0,
          report.out_dir.c_str(), static_cast<long>(report.files), HumanBytes(report.bytes).c_str(),
          static_cast<long>(report.alive_at_end), report.mean_p_engage, report.oracle_auc,
          report.bayes_auc);
      return Status::Ok();
    };
  });
}

// --- ingest -----------------------------------------------------------------------------------
void AddIngest(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand(
      "ingest", "Validate and load CSV/JSONL/Parquet files into a table's partitioned lake");
  auto req = std::make_shared<lake::IngestRequest>();
  auto format = std::make_shared<std::string>("auto");
  auto json = std::make_shared<bool>(false);
  cmd->add_option("table", req->table, "Table name (as in engage.toml)")->required();
  cmd->add_option("files", req->inputs, "Files or glob patterns (CSV may be .gz)")->required();
  cmd->add_option("--id", req->ingest_id, "Ingest id (default: generated); reusing one is a no-op");
  cmd->add_option("--format", *format, "auto (by extension), csv, jsonl or parquet")
      ->capture_default_str();
  cmd->add_flag("--json", *json, "Print the report as JSON");
  cmd->callback([&g, action, req, format, json] {
    *action = [&g, req, format, json]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(req->format, lake::ParseSourceFormat(*format));
      ENGAGE_ASSIGN_OR_RETURN(auto l, OpenLake(g, /*writer=*/true));
      bool tty = StderrIsTty();
      auto stage = [tty](const std::string& s) {
        if (tty) std::fprintf(stderr, "\r\033[K%s ...", s.c_str());
      };
      auto report = lake::Ingest(*l, *req, stage);
      if (tty) std::fprintf(stderr, "\r\033[K");
      if (!report.ok()) return report.status();
      if (*json) {
        PrintJson(report->ToJson());
        return Status::Ok();
      }
      const auto& r = report->record;
      if (report->no_op) {
        std::printf("no-op: all %zu source file(s) were already ingested into '%s'\n",
                    report->skipped.size(), req->table.c_str());
        for (const auto& s : report->skipped) {
          std::printf("  %s (ingest %s)\n", s.path.c_str(), s.previous_ingest_id.c_str());
        }
        return Status::Ok();
      }
      std::printf(
          "ingest %s into '%s': read %ld rows, accepted %ld, rejected %ld; wrote %ld file(s), %s "
          "in %zu partition(s) in %.0f ms\n",
          r.id.c_str(), r.table.c_str(), static_cast<long>(r.rows_read),
          static_cast<long>(r.rows_accepted), static_cast<long>(r.rows_rejected),
          static_cast<long>(r.files_written), HumanBytes(r.bytes_written).c_str(),
          r.partitions.size(), r.duration_ms);
      for (const auto& s : report->skipped) {
        std::printf("  skipped %s: already ingested by %s\n", s.path.c_str(),
                    s.previous_ingest_id.c_str());
      }
      if (!report->quarantine_file.empty()) {
        std::printf("  rejected rows and reasons: %s\n", report->quarantine_file.c_str());
      }
      return Status::Ok();
    };
  });
}

// --- query ------------------------------------------------------------------------------------

// The whole of `path` ("-": stdin). kNotFound naming a file that does not exist.
Result<std::string> ReadSqlSource(const std::string& path) {
  std::FILE* f = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    if (errno == ENOENT) return NotFoundError(fmt::format("no SQL file '{}'", path));
    return InvalidArgumentError(
        fmt::format("cannot read SQL file '{}': {}", path, std::strerror(errno)));
  }
  std::string text;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  bool failed = std::ferror(f) != 0;
  if (f != stdin) std::fclose(f);
  if (failed) return InvalidArgumentError(fmt::format("cannot read SQL from '{}'", path));
  return text;
}

void AddQuery(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand(
      "query", "Run read-only SQL over the lake, with bytes scanned and cost before and after");
  auto req = std::make_shared<sql::QueryRequest>();
  auto file = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto csv = std::make_shared<bool>(false);
  auto max_scan = std::make_shared<int64_t>(-1);
  auto timeout = std::make_shared<int64_t>(-1);
  auto max_rows = std::make_shared<int64_t>(-1);
  cmd->add_option("sql", req->sql,
                  "One SELECT statement (- reads it from stdin); tables are views over the lake");
  cmd->add_option("--file,-f", *file, "Read the SQL from this file (- for stdin)");
  cmd->add_flag("--json", *json, "Print one JSON object (columns, every row, bytes, cost, ...)");
  cmd->add_flag("--csv", *csv,
                "Print every row as CSV (RFC 4180 quoting; the cost report goes to stderr)");
  cmd->add_option("--max-rows", *max_rows,
                  "Rows the table shows, then how many more there are (default 40 on a "
                  "terminal, all otherwise; 0 = all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--dry-run", req->dry_run, "Only estimate the bytes to scan and the cost");
  cmd->add_option("--max-scan-bytes", *max_scan,
                  "Refuse the query if its estimate exceeds this (0 = no cutoff; default from "
                  "engage.toml [query] max_scan_bytes)");
  cmd->add_option("--timeout", *timeout,
                  "Stop the query after this many seconds (0 = never; default from engage.toml "
                  "[query] timeout_seconds, else 600); exit 8 when it is stopped")
      ->check(CLI::Range(int64_t{0}, int64_t{31'536'000}));
  cmd->callback([&g, action, req, file, json, csv, max_scan, timeout, max_rows] {
    *action = [&g, req, file, json, csv, max_scan, timeout, max_rows]() -> Status {
      if (*json && *csv) return InvalidArgumentError("--json and --csv are exclusive");
      if (!file->empty() && !req->sql.empty()) {
        return InvalidArgumentError("give the SQL as an argument or with --file, not both");
      }
      if (file->empty() && req->sql.empty()) {
        return InvalidArgumentError(
            "no SQL: give it as an argument, with --file FILE, or as - to read stdin");
      }
      if (!file->empty() || req->sql == "-") {
        ENGAGE_ASSIGN_OR_RETURN(req->sql, ReadSqlSource(file->empty() ? "-" : *file));
      }
      if (*max_scan >= 0) req->max_scan_bytes = *max_scan;
      ENGAGE_ASSIGN_OR_RETURN(auto l, OpenLake(g, /*writer=*/false));
      int64_t seconds =
          *timeout >= 0
              ? *timeout
              : l->config().query.timeout_seconds.value_or(sql::kDefaultCliQueryTimeoutSeconds);
      req->timeout_ms = seconds * 1000;
      ENGAGE_ASSIGN_OR_RETURN(auto qe, sql::QueryEngine::Open(*l));
      ENGAGE_ASSIGN_OR_RETURN(auto r, qe->Run(*req));
      if (*json) {
        PrintJson(r.ToJson());
        return Status::Ok();
      }
      std::string summary;
      if (r.dry_run) {
        summary = fmt::format(
            "dry run: would scan about {} ({} bytes) in {} partition(s); "
            "estimated cost {}",
            HumanBytes(r.estimated_bytes), r.estimated_bytes, r.partitions_scanned,
            Usd(r.estimated_cost_usd));
      } else {
        summary = fmt::format(
            "{} row(s){} | scanned {} (estimate {}) in {} partition(s) | cost {} | {:.1f} ms",
            r.row_count, r.truncated ? " (truncated at [query] max_result_rows)" : "",
            HumanBytes(r.bytes_scanned), HumanBytes(r.estimated_bytes), r.partitions_scanned,
            Usd(r.cost_usd), r.elapsed_ms);
      }
      if (*csv) {
        std::fputs(r.ToCsv().c_str(), stdout);
        std::fprintf(stderr, "%s\n", summary.c_str());
        return Status::Ok();
      }
      if (!r.dry_run) {
        // Like DuckDB's shell: a terminal shows the first rows and how many more there are.
        const int64_t shown_max =
            *max_rows >= 0 ? *max_rows : (::isatty(STDOUT_FILENO) == 1 ? 40 : 0);
        const int64_t total = static_cast<int64_t>(r.rows.size());
        const int64_t shown = shown_max > 0 ? std::min(shown_max, total) : total;
        std::vector<std::vector<std::string>> rows;
        for (int64_t i = 0; i < shown; ++i) {
          std::vector<std::string> cells;
          for (const auto& v : r.rows[static_cast<size_t>(i)]) cells.push_back(CellText(v));
          rows.push_back(std::move(cells));
        }
        PrintTable(r.columns, rows);
        if (shown < total) {
          std::printf(
              "... %ld more rows (--max-rows 0 shows them all; --csv or --json prints "
              "every row)\n",
              static_cast<long>(total - shown));
        }
      }
      std::printf("%s\n", summary.c_str());
      return Status::Ok();
    };
  });
}

// --- tables -----------------------------------------------------------------------------------
void AddTables(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand("tables", "List tables: schema, partitions, rows, bytes");
  auto json = std::make_shared<bool>(false);
  auto name = std::make_shared<std::string>();
  cmd->add_option("table", *name, "Show one table's schema and partitions");
  cmd->add_flag("--json", *json, "Print as JSON");
  cmd->callback([&g, action, json, name] {
    *action = [&g, json, name]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto l, OpenLake(g, /*writer=*/false));
      if (!name->empty()) {
        ENGAGE_ASSIGN_OR_RETURN(auto info, l->Table(*name));
        ENGAGE_ASSIGN_OR_RETURN(auto parts, l->catalog().Partitions(*name));
        if (*json) {
          Json j = info.ToJson();
          Json pj = Json::array();
          for (const auto& p : parts) {
            pj.push_back({{"dt", p.dt}, {"files", p.files}, {"rows", p.rows}, {"bytes", p.bytes}});
          }
          j["partition_list"] = pj;
          PrintJson(j);
          return Status::Ok();
        }
        std::vector<std::vector<std::string>> rows;
        for (const auto& c : info.spec->columns) {
          std::string rules;
          if (c.min) rules += fmt::format("min {} ", *c.min);
          if (c.max) rules += fmt::format("max {} ", *c.max);
          if (!c.allowed.empty()) rules += fmt::format("{} allowed values ", c.allowed.size());
          rows.push_back({c.name, std::string(ColumnTypeName(c.type)), c.required ? "yes" : "",
                          c.expr.empty() ? c.source : "expr: " + c.expr, rules});
        }
        rows.push_back({"dt", "date", "yes",
                        info.spec->time_column.empty()
                            ? "partition (load date)"
                            : "partition (date of " + info.spec->time_column + ")",
                        ""});
        std::printf("table %s: %ld partition(s), %ld file(s), %ld rows, %s\n\n", name->c_str(),
                    static_cast<long>(info.partitions), static_cast<long>(info.files),
                    static_cast<long>(info.rows), HumanBytes(info.bytes).c_str());
        PrintTable({"column", "type", "required", "source", "rules"}, rows);
        if (!parts.empty()) {
          std::printf("\n");
          std::vector<std::vector<std::string>> prow;
          for (const auto& p : parts) {
            prow.push_back(
                {p.dt, std::to_string(p.files), std::to_string(p.rows), HumanBytes(p.bytes)});
          }
          PrintTable({"dt", "files", "rows", "bytes"}, prow);
        }
        return Status::Ok();
      }
      ENGAGE_ASSIGN_OR_RETURN(auto tables, l->Tables());
      if (*json) {
        Json arr = Json::array();
        for (const auto& t : tables) arr.push_back(t.ToJson());
        PrintJson({{"tables", arr}});
        return Status::Ok();
      }
      std::vector<std::vector<std::string>> rows;
      for (const auto& t : tables) {
        rows.push_back(
            {t.spec->name, std::to_string(t.spec->columns.size() + 1), std::to_string(t.partitions),
             std::to_string(t.files), std::to_string(t.rows), HumanBytes(t.bytes),
             t.min_dt.empty() ? "-" : t.min_dt + " .. " + t.max_dt,
             t.spec->retention_days ? std::to_string(t.spec->retention_days) + "d" : "forever"});
      }
      PrintTable({"table", "columns", "partitions", "files", "rows", "bytes", "dates", "retention"},
                 rows);
      return Status::Ok();
    };
  });
}

// --- retention / compact / history ------------------------------------------------------------
void AddRetention(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand("retention", "Retention of old partitions");
  cmd->require_subcommand(1);
  auto* apply = cmd->add_subcommand(
      "apply", "Drop partitions older than each table's retention_days (recorded in meta.db)");
  auto table = std::make_shared<std::string>();
  auto dry = std::make_shared<bool>(false);
  auto json = std::make_shared<bool>(false);
  apply->add_option("--table", *table, "Only this table");
  apply->add_flag("--dry-run", *dry, "Only list what would be dropped");
  apply->add_flag("--json", *json, "Print as JSON");
  apply->callback([&g, action, table, dry, json] {
    *action = [&g, table, dry, json]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto l, OpenLake(g, /*writer=*/true));
      ENGAGE_ASSIGN_OR_RETURN(auto r, lake::ApplyRetention(*l, *table, *dry));
      if (*json) {
        PrintJson(r.ToJson());
        return Status::Ok();
      }
      int64_t rows = 0, bytes = 0;
      for (const auto& d : r.dropped) {
        rows += d.rows;
        bytes += d.bytes;
      }
      std::printf("%s %zu partition(s), %ld rows, %s (today %s)\n", *dry ? "would drop" : "dropped",
                  r.dropped.size(), static_cast<long>(rows), HumanBytes(bytes).c_str(),
                  r.today.c_str());
      return Status::Ok();
    };
  });
}

void AddCompact(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand("compact", "Merge each partition's small files into one");
  auto table = std::make_shared<std::string>();
  auto min_files = std::make_shared<int64_t>(2);
  auto json = std::make_shared<bool>(false);
  cmd->add_option("table", *table, "Table to compact")->required();
  cmd->add_option("--min-files", *min_files, "Compact partitions with at least this many files")
      ->capture_default_str();
  cmd->add_flag("--json", *json, "Print as JSON");
  cmd->callback([&g, action, table, min_files, json] {
    *action = [&g, table, min_files, json]() -> Status {
      if (*min_files < 2) return InvalidArgumentError("--min-files must be at least 2");
      ENGAGE_ASSIGN_OR_RETURN(auto l, OpenLake(g, /*writer=*/true));
      ENGAGE_ASSIGN_OR_RETURN(auto r, lake::Compact(*l, *table, *min_files));
      if (*json) {
        PrintJson(r.ToJson());
        return Status::Ok();
      }
      std::printf("compacted %ld partition(s) of '%s': %ld files -> %ld, %ld rows, %s -> %s\n",
                  static_cast<long>(r.partitions_compacted), table->c_str(),
                  static_cast<long>(r.files_before), static_cast<long>(r.files_after),
                  static_cast<long>(r.rows), HumanBytes(r.bytes_before).c_str(),
                  HumanBytes(r.bytes_after).c_str());
      return Status::Ok();
    };
  });
}

void AddHistory(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand("history", "Show recent queries with bytes scanned and cost");
  auto limit = std::make_shared<int64_t>(20);
  auto json = std::make_shared<bool>(false);
  cmd->add_option("-n,--limit", *limit, "How many")->capture_default_str();
  cmd->add_flag("--json", *json, "Print as JSON");
  cmd->callback([&g, action, limit, json] {
    *action = [&g, limit, json]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto l, OpenLake(g, /*writer=*/false));
      ENGAGE_ASSIGN_OR_RETURN(auto h, l->catalog().QueryHistory(*limit));
      double total = 0;
      for (const auto& q : h) total += q.cost_usd;
      if (*json) {
        Json arr = Json::array();
        for (const auto& q : h) {
          arr.push_back({{"at", q.at},
                         {"sql", q.sql},
                         {"status", q.status},
                         {"error", q.error},
                         {"bytes_scanned", q.bytes_scanned},
                         {"estimated_bytes", q.estimated_bytes},
                         {"partitions_scanned", q.partitions_scanned},
                         {"rows", q.rows},
                         {"elapsed_ms", q.elapsed_ms},
                         {"cost_usd", q.cost_usd},
                         {"source", q.source}});
        }
        PrintJson({{"queries", arr}, {"total_cost_usd", total}});
        return Status::Ok();
      }
      std::vector<std::vector<std::string>> rows;
      for (const auto& q : h) {
        rows.push_back({q.at, q.status, HumanBytes(q.bytes_scanned), Usd(q.cost_usd),
                        fmt::format("{:.0f}", q.elapsed_ms), q.sql});
      }
      PrintTable({"at", "status", "scanned", "cost", "ms", "sql"}, rows);
      std::printf("total cost of these queries: %s\n", Usd(total).c_str());
      return Status::Ok();
    };
  });
}

}  // namespace

void RegisterCommands(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
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
  RegisterFlowCommands(app, g, action);
  RegisterMlCommands(app, g, action);
  RegisterTrainCommands(app, g, action);
  RegisterServeCommands(app, g, action);
  RegisterKeysCommands(app, g, action);
}

}  // namespace engage::cli
