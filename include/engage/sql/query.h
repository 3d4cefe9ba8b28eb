// Metered, sandboxed SQL over the lake.
//
// Every lake table is a view over the Parquet files the catalog lists, with Hive partitioning,
// so filters on `dt` prune files. Before a query runs, DuckDB binds and optimizes it and Engage
// reads the resulting logical plan (json_serialize_plan): every scan in it, whatever the query's
// spelling (quoting, case, schema, query_table(), query(), read_parquet over lake paths, a view
// in a subquery), with the files it will read after partition pruning. Those scans decide which
// tables the query reads (the authorization callback sees them), and their files' bytes are the
// estimate, checked against the scan cutoff and a table's require_partition_filter. A table
// function other than a scan of lake files or a few pure generators (range, unnest, ...) is
// refused, and so is a query whose plan cannot be read. After it runs, the bytes the process
// actually read from the files are measured (the kernel's per-process read counter, so it is what
// was read, not a model) and priced like Athena. Each query, refused or run, lands in the query
// history with its cost.
//
// User SQL is read-only: exactly one SELECT (or EXPLAIN) statement; DuckDB's configuration is
// locked and file access is limited to the lake directory, so read_csv('/etc/passwd'), COPY,
// ATTACH, INSTALL, LOAD, PRAGMA and SET are all refused.
//
// Runaway queries are bounded: a timeout (QueryRequest::timeout_ms), cancellation (the
// `cancelled` callback, polled while the query runs: a client that went away, a server that is
// stopping), and DuckDB's memory limit ([query] memory_limit), spilling to the home's tmp/.
//
// An engine is meant to live as long as the process (a server keeps one): it builds its views
// once and rebuilds them only when the catalog's generation changes (an ingest, compaction or
// retention, in this process or another), which it checks with one small SQLite read before
// every query.
//
//   ENGAGE_ASSIGN_OR_RETURN(auto engine, QueryEngine::Open(lake));
//   ENGAGE_ASSIGN_OR_RETURN(QueryResult r, engine->Run({.sql = "SELECT count(*) FROM events"}));
//
// Thread-safety: a QueryEngine may be shared by any number of threads. Its queries run one at a
// time (Run and RunTrusted hold a mutex for the whole query), because a query's bytes scanned are
// the growth of the process's read counter while it runs, which is exact only when nothing else
// in the process reads at the same time; queries of different engines in one process are
// serialized the same way.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engage/core/json.h"
#include "engage/core/usage.h"
#include "engage/lake/duck.h"
#include "engage/lake/lake.h"

namespace engage::sql {

struct QueryRequest {
  std::string sql;
  bool dry_run = false;
  std::optional<int64_t> max_scan_bytes;  // overrides the config's cutoff; 0 = none
  std::string source = "cli";
  // Called once the tables the query reads are known (as DuckDB resolved them), before anything
  // runs (e.g. the server's policy check); an error refuses the query.
  std::function<Status(const std::set<std::string>& tables)> authorize;
  // Stops the query with kDeadlineExceeded once it has run this long; 0 = no limit.
  int64_t timeout_ms = 0;
  // Polled while the query runs (every few milliseconds, from another thread); true stops it
  // with kCancelled. E.g. the HTTP client went away or the server is stopping.
  std::function<bool()> cancelled;
};

// A command's SQL: `sql` as given, or the text of `file` ("-": stdin), or stdin when `sql` is
// "-". kInvalidArgument when both or neither are given or the text is over 16 MiB, kNotFound
// when the file cannot be read.
Result<std::string> SqlFromArguments(const std::string& sql, const std::string& file);

// The timeout of a user query when [query] timeout_seconds is not set: the CLI's and the
// server's (a request holds one of a few blocking threads).
inline constexpr int64_t kDefaultCliQueryTimeoutSeconds = 600;
inline constexpr int64_t kDefaultServerQueryTimeoutSeconds = 30;

struct TableScan {
  std::string table;
  int64_t files_scanned = 0;
  int64_t files_total = 0;
  int64_t partitions_scanned = 0;
  int64_t estimated_bytes = 0;
  std::string file_filter;  // the partition filter DuckDB pushed down, if any
};

struct QueryResult {
  std::vector<std::string> columns;
  std::vector<std::string> column_types;
  Json rows = Json::array();  // array of arrays
  bool truncated = false;     // more rows than max_result_rows
  int64_t row_count = 0;
  int64_t bytes_scanned = 0;
  int64_t estimated_bytes = 0;
  int64_t partitions_scanned = 0;
  std::vector<TableScan> scans;
  std::set<std::string> tables;  // every lake table the query reads, as resolved
  double cost_usd = 0;
  double estimated_cost_usd = 0;
  double elapsed_ms = 0;
  bool dry_run = false;

  // The body shared by `engage query --json` and POST /v1/query.
  Json ToJson() const;
  // The columns and every row as CSV: a header line, then one line per row ending in "\n";
  // fields holding a comma, a double quote, CR or LF are quoted, quotes doubled (RFC 4180).
  // NULL is an empty field; lists and structs are their JSON text.
  std::string ToCsv() const;
  // The cost report in a line: rows, bytes scanned against the estimate, partitions, cost, time
  // (a dry run's: the estimate).
  std::string Summary() const;
  // The first `max_rows` rows (0: all) as an aligned table, then how many more there are.
  std::string Table(int64_t max_rows) const;
};

// A view Engage defines over a lake table, read by queries like a table (engage query, POST
// /v1/query, query_table()): its reads are authorized, metered and limited as reads of `table`.
struct DerivedView {
  std::string name;   // e.g. "predictions_latest"
  std::string table;  // the lake table it reads
  std::string sql;    // its SELECT over `table`
};

// The derived views of a configuration. With a `predictions` table: `predictions_latest`, one row
// per (model, customer_id), the latest scoring of each customer (latest scored_at, then the
// highest model_version), with customer_id cast to the table's configured type (so predictions
// written when the id was stored as text read the same as newer ones).
std::vector<DerivedView> DerivedViews(const Config& config);

// Hooks an application installs on its engines (QueryEngine::SetHooks).
struct QueryHooks {
  // Called for a user query (Run), dry run or not, once its scan estimate and cost are known and
  // before it runs; an error refuses it and is returned as is (e.g. a hard budget the estimate
  // would cross: kResourceExhausted).
  std::function<Status(const QueryResult& planned, const QueryRequest& req)> admit;
  // Called after the engine adds a query that ran to the cost ledger (on the querying thread,
  // with the engine's lock held: it must not query this engine).
  std::function<void(const lake::LedgerEntry& entry)> recorded;
};

class QueryEngine {
 public:
  // Builds the sandboxed DuckDB with the lake's views. `threads` 0 = all cores. The engine keeps
  // a reference to `lake` (its config, clock and paths, never its catalog connection: the engine
  // opens its own), which must outlive it.
  static Result<std::unique_ptr<QueryEngine>> Open(lake::Lake& lake, int threads = 0);
  ~QueryEngine();

  // Errors: kInvalidArgument (SQL error, several statements), kPermissionDenied (not read-only,
  // files outside the lake, a table function not allowed, a plan that cannot be read, or the
  // authorize callback's refusal), kResourceExhausted (estimate above the cutoff),
  // kFailedPrecondition (a table requiring a dt filter scanned without one), kDeadlineExceeded
  // (timeout), kCancelled (the cancelled callback said so).
  Result<QueryResult> Run(const QueryRequest& req);

  // Runs SQL written by Engage itself (feature and model queries), not by a user: no read-only
  // check and no row limit, but the same sandbox (only the lake is readable), and the query is
  // metered and recorded in the history under `source` like any other. kInvalidArgument for SQL
  // errors.
  Result<lake::DuckResult> RunTrusted(const std::string& sql, const std::string& source);

  // Replaces the hooks (none by default).
  void SetHooks(QueryHooks hooks);

  // The lake whose config, clock and paths the engine uses. Not its catalog from other threads:
  // a Lake's catalog connection belongs to one thread (use CatalogFiles).
  lake::Lake& lake() { return lake_; }

  // A table's catalogued files, read on the engine's own catalog connection (thread-safe).
  Result<std::vector<lake::LakeFile>> CatalogFiles(const std::string& table);

  // How many times the engine has built its views over the catalogued files: once when it opens,
  // then once per change of the catalog's generation seen before a query.
  int64_t ViewBuildsForTesting();
  // How many times a table's view on the run connection was (re)defined to read the files of a
  // query's plan (see Run).
  int64_t RunViewBuildsForTesting();
  // How many queries reused the check and plan resolution of the same text (see Run).
  int64_t CheckedQueryHitsForTesting();

 private:
  // What a query's plan reads.
  struct Resolution {
    std::vector<TableScan> scans;
    std::map<std::string, std::set<std::string>> files;  // table -> absolute paths read
    // The query needs no other file than `files` to run: the optimized plan was read and holds
    // only operators that compute from their scans (DuckDB may answer part of a query from files'
    // metadata while planning, leaving no scan: count(*) over one pruned file).
    bool self_contained = false;
  };

  // A query's text as checked (one read-only statement, nothing but lake tables) and its plan
  // resolved: kept per text until the catalog's generation changes.
  struct CheckedQuery {
    bool explain = false;         // an EXPLAIN of `stmt`
    std::string stmt;             // the SELECT that runs or is explained
    std::set<std::string> named;  // lake tables the text names (any case), besides the plan's
    bool reads_tables = false;    // the text names a table or calls a table-reading function
    Resolution resolved;          // of `stmt`
  };
  static constexpr size_t kMaxCheckedQueries = 256;
  static constexpr size_t kMaxCheckedText = 64 * 1024;  // bytes of one text kept
  static constexpr size_t kMaxCheckedPaths = 65536;     // file paths kept in all (one: 1/8)

  QueryEngine(lake::Lake& lake, lake::Catalog catalog, lake::DuckDb db, lake::DuckConn conn,
              lake::DuckConn run_conn);
  // Rebuilds the views and the file map if the catalog's generation changed since they were
  // built. Requires mu_.
  Status Refresh();
  Status BuildViews(const lake::FileSnapshot& snapshot);
  // The lake scans of SELECT `sql` as DuckDB binds and optimizes it: per scan, the table and the
  // files left after pruning. `reads_tables`: its text names a table or a table-reading function
  // (so a plan without scans hides some). kPermissionDenied for a scan of anything else.
  Result<Resolution> ResolveScans(const std::string& sql, bool reads_tables);
  // Checks a query's text and resolves its plan: errors as Run's. Requires mu_.
  Result<CheckedQuery> CheckText(const std::string& sql);
  // The connection to run a SELECT on, given what its plan reads: `conn_` when the query reads
  // every file of each table it names, else `run_conn_`, whose views of those tables are (re)
  // defined to read only the files the plan resolved.
  Result<lake::DuckConn*> RunConnection(const std::set<std::string>& tables,
                                        const Resolution& resolved);
  // Runs `sql` on `conn` while counting the bytes the process reads; stops it when `req` says so
  // (timeout or cancellation) or once it has read more than `max_read_bytes` (> 0); never stops
  // it when `req` is null.
  Result<lake::DuckResult> MeteredQuery(lake::DuckConn& conn, const std::string& sql,
                                        int64_t* bytes_scanned, const QueryRequest* req = nullptr,
                                        int64_t max_read_bytes = 0);
  // Adds the query to the history and, when it ran (`start`: the process's counters when it
  // began), to the cost ledger with the calling thread's CostContext.
  void Record(const QueryRequest& req, const std::string& status, const std::string& error,
              const QueryResult* r, const UsageSample* start = nullptr);

  class Watchdog;  // stops a running query (query.cc)

  lake::Lake& lake_;
  std::mutex mu_;          // one query at a time; guards everything below
  lake::Catalog catalog_;  // this engine's own connection to meta.db
  lake::DuckDb db_;
  // Views over every catalogued file: plans, EXPLAIN, trusted SQL, queries reading whole tables.
  lake::DuckConn conn_;
  lake::DuckPrepared parse_tree_;  // json_serialize_sql($1) on conn_, prepared once
  // Views over the files a query's plan resolved (run_views_), so that running the query binds
  // only those: binding a view over a long file list checks every file, which is most of the
  // cost of planning a small query, and the plan already paid it once.
  lake::DuckConn run_conn_;
  int64_t generation_ = -1;  // of the catalog, when the views were built
  int64_t view_builds_ = 0;
  int64_t run_view_builds_ = 0;
  std::map<std::string, std::vector<std::string>> table_files_;  // table -> paths, catalog order
  std::set<std::string> damaged_;  // tables whose view fails every query (a file went missing)
  std::map<std::string, std::vector<std::string>> run_views_;  // table -> files its run view reads
  std::map<std::string, CheckedQuery> checked_;                // by SQL text, for generation_
  size_t checked_paths_ = 0;                                   // file paths held by checked_
  int64_t checked_hits_ = 0;
  struct FileInfo {
    std::string table;
    std::string dt;
    int64_t bytes = 0;
  };
  std::map<std::string, FileInfo, std::less<>> files_;  // absolute path -> catalogued file
  int io_fd_ = -1;  // /proc/self/io, kept open: the process's read counter, read before and after
  std::unique_ptr<Watchdog> watchdog_;  // one thread for the engine's queries, started once
  QueryHooks hooks_;
};

// Bytes this process has read through read(2)/pread(2) so far (rchar of /proc/self/io).
// Stores in `*probe_bytes` how many bytes this call itself read, which the next reading counts.
int64_t ProcessReadBytes(int64_t* probe_bytes);

}  // namespace engage::sql
