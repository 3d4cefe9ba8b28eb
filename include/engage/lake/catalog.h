// The lake's catalog in meta.db (SQLite, WAL): which Parquet files make up each table, the
// ingest manifest, the maintenance log and the query history.
//
// The catalog is the source of truth for readers: a file under lake/<table>/ that the catalog
// does not list is invisible and is removed by recovery. That is what makes ingest and
// compaction atomic: files are moved into place first, then one SQLite transaction publishes
// them.
//
// Thread-safety: not thread-safe; one Catalog per thread. Several processes may share meta.db.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engage/core/json.h"
#include "engage/core/sqlite.h"
#include "engage/core/status.h"
#include "engage/core/usage.h"

namespace engage::lake {

struct LakeFile {
  std::string path;  // relative to the lake root: <table>/dt=YYYY-MM-DD/part-<id>-<n>.parquet
  std::string table;
  std::string dt;  // YYYY-MM-DD
  int64_t rows = 0;
  int64_t bytes = 0;
  std::string ingest_id;
};

struct SourceFile {
  std::string path;  // absolute path as given
  std::string sha256;
  int64_t bytes = 0;
  int64_t rows_read = 0;
  int64_t rows_rejected = 0;
};

struct IngestRecord {
  std::string id;
  std::string table;
  std::string started_at;  // ISO-8601 UTC
  std::string finished_at;
  int64_t rows_read = 0;
  int64_t rows_accepted = 0;
  int64_t rows_rejected = 0;
  int64_t bytes_written = 0;
  int64_t files_written = 0;
  std::vector<std::string> partitions;
  double duration_ms = 0;
  std::string quarantine_path;  // relative to the lake root; empty if nothing was rejected
  std::vector<SourceFile> sources;

  Json ToJson() const;
};

struct PartitionStats {
  std::string dt;
  int64_t files = 0;
  int64_t rows = 0;
  int64_t bytes = 0;
  Json ToJson() const;  // {"dt", "files", "rows", "bytes"}
};

// Every catalogued file, as of one generation of the file set.
struct FileSnapshot {
  int64_t generation = 0;
  std::vector<LakeFile> files;  // ordered by table, dt, path
};

struct QueryRecord {
  std::string at;
  std::string sql;
  std::string status;  // "ok", "refused", "error", "dry_run"
  std::string error;
  int64_t bytes_scanned = 0;
  int64_t estimated_bytes = 0;
  int64_t partitions_scanned = 0;
  int64_t rows = 0;
  double elapsed_ms = 0;
  double cost_usd = 0;
  std::string source;   // "cli", "http", ...
  Json ToJson() const;  // every field, under its own name
};

// One row of the cost ledger (meta.db's cost_ledger): a piece of work Engage did, what it used
// on this machine and what the same work would cost on the cloud stack it replaces. Written by
// the query engine (every query that ran) and by the monitor component (steps, executions,
// training and scoring runs, publishes, server request batches, storage).
struct LedgerEntry {
  std::string at;  // ISO-8601 UTC, when the work ended
  std::string
      kind;  // query, step, execution, training, scoring, publish, requests, ingest, storage
  std::string name;    // what it was: the query's source, the step, the pipeline, the model...
  std::string id;      // this entry's scope id (work nested in it names it as parent), or ""
  std::string parent;  // the scope it ran in ("" = top level)
  std::string execution_id, pipeline, step, model;
  std::string tables;  // lake tables it read or wrote, comma-separated
  Usage usage;
  double cloud_usd = 0;
  Json detail = Json::object();  // how it was priced (service, units)
  // Every field under its own name, usage fields flattened.
  Json ToJson() const;
};

// Query records as a table (at, status, scanned, cost, ms, sql) and their total cost.
std::string QueryHistoryTable(const std::vector<QueryRecord>& records);
// {"queries": [...], "total_cost_usd"}
Json QueryHistoryJson(const std::vector<QueryRecord>& records);

class Catalog {
 public:
  // Opens meta.db, creating or migrating its schema.
  static Result<Catalog> Open(const std::string& meta_db_path);

  // Files of `table`, ordered by dt then path.
  Result<std::vector<LakeFile>> Files(const std::string& table);
  Result<std::vector<PartitionStats>> Partitions(const std::string& table);
  // All catalogued paths (relative), for recovery.
  Result<std::vector<std::string>> AllPaths();
  // The generation of the file set: it changes, in the same transaction, with every change to
  // the catalogued files (ingest, compaction, retention, anything else), in this process or
  // another, and never goes back. One small indexed read: cheap enough to call before every
  // query.
  Result<int64_t> Generation();
  // The generation and every catalogued file, read in one transaction.
  Result<FileSnapshot> Snapshot();

  Result<std::optional<IngestRecord>> FindIngest(const std::string& id);
  // Id of the ingest that already loaded content `sha256` into `table`, if any.
  Result<std::optional<std::string>> FindSource(const std::string& table,
                                                const std::string& sha256);
  Result<std::vector<IngestRecord>> RecentIngests(int64_t limit);
  // Publishes an ingest: its record, sources and files, in one transaction.
  // kAlreadyExists if the id was committed before.
  Status CommitIngest(const IngestRecord& rec, const std::vector<LakeFile>& files);

  // Replaces `removed` (paths) by `added` in one transaction and logs `kind` with `details`.
  // Removed files are moved to the trash list; their bytes are deleted later by PurgeTrash.
  Status ReplaceFiles(const std::string& table, const std::vector<std::string>& removed,
                      const std::vector<LakeFile>& added, const std::string& kind,
                      const Json& details, const std::string& at);
  // Trash entries older than `before` (ISO time) are returned and forgotten.
  Result<std::vector<std::string>> TakeTrash(const std::string& before);
  Result<std::vector<std::string>> TrashPaths();

  Status LogEvent(const std::string& kind, const std::string& table, const Json& details,
                  const std::string& at);
  Result<std::vector<Json>> Log(const std::string& kind, int64_t limit);

  Status RecordQuery(const QueryRecord& q);
  // Appends to the cost ledger.
  Status RecordCost(const LedgerEntry& e);
  Result<std::vector<QueryRecord>> QueryHistory(int64_t limit);

  SqliteDb& db() { return db_; }

 private:
  explicit Catalog(SqliteDb db) : db_(std::move(db)) {}
  Status Migrate();
  SqliteDb db_;
  // Prepared once, finalized before db_ closes.
  std::unique_ptr<SqliteStmt> generation_stmt_;
  std::unique_ptr<SqliteStmt> record_query_stmt_;
  std::unique_ptr<SqliteStmt> record_cost_stmt_;
};

}  // namespace engage::lake
