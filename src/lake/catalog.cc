#include "engage/lake/catalog.h"

#include <fmt/format.h>

#include "engage/core/fs.h"

namespace engage::lake {
namespace {

constexpr int kSchemaVersion = 1;

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ingests (
  id TEXT PRIMARY KEY,
  table_name TEXT NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  rows_read INTEGER NOT NULL,
  rows_accepted INTEGER NOT NULL,
  rows_rejected INTEGER NOT NULL,
  bytes_written INTEGER NOT NULL,
  files_written INTEGER NOT NULL,
  partitions TEXT NOT NULL,
  duration_ms REAL NOT NULL,
  quarantine_path TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ingest_sources (
  ingest_id TEXT NOT NULL REFERENCES ingests(id),
  table_name TEXT NOT NULL,
  path TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  rows_read INTEGER NOT NULL,
  rows_rejected INTEGER NOT NULL,
  PRIMARY KEY (ingest_id, path)
);
CREATE INDEX IF NOT EXISTS ingest_sources_by_hash ON ingest_sources(table_name, sha256);
CREATE TABLE IF NOT EXISTS lake_files (
  path TEXT PRIMARY KEY,
  table_name TEXT NOT NULL,
  dt TEXT NOT NULL,
  rows INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  ingest_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS lake_files_by_table ON lake_files(table_name, dt);
CREATE TABLE IF NOT EXISTS lake_trash (
  path TEXT PRIMARY KEY,
  removed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lake_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL,
  kind TEXT NOT NULL,
  table_name TEXT NOT NULL,
  details TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS query_history (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL,
  sql TEXT NOT NULL,
  status TEXT NOT NULL,
  error TEXT NOT NULL,
  bytes_scanned INTEGER NOT NULL,
  estimated_bytes INTEGER NOT NULL,
  partitions_scanned INTEGER NOT NULL,
  rows INTEGER NOT NULL,
  elapsed_ms REAL NOT NULL,
  cost_usd REAL NOT NULL,
  source TEXT NOT NULL
);
-- The cost ledger (see LedgerEntry in catalog.h).
CREATE TABLE IF NOT EXISTS cost_ledger (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  id TEXT NOT NULL,
  parent TEXT NOT NULL,
  execution_id TEXT NOT NULL,
  pipeline TEXT NOT NULL,
  step TEXT NOT NULL,
  model TEXT NOT NULL,
  tables TEXT NOT NULL,
  cpu_seconds REAL NOT NULL,
  wall_seconds REAL NOT NULL,
  bytes_read INTEGER NOT NULL,
  bytes_written INTEGER NOT NULL,
  peak_memory_bytes INTEGER NOT NULL,
  cloud_usd REAL NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cost_ledger_by_time ON cost_ledger(at);
CREATE INDEX IF NOT EXISTS cost_ledger_by_execution ON cost_ledger(execution_id);
CREATE INDEX IF NOT EXISTS cost_ledger_by_id ON cost_ledger(id);
-- The file set's generation: bumped in the same transaction as every change to lake_files, by
-- whatever makes it (ingest, compaction, retention, a hand-written DELETE), so a reader that
-- saw generation g and sees g again knows the file set is unchanged. Readers in other processes
-- see it too (it is in meta.db).
CREATE TABLE IF NOT EXISTS lake_generation (
  id INTEGER PRIMARY KEY CHECK (id = 0),
  generation INTEGER NOT NULL
);
INSERT OR IGNORE INTO lake_generation(id, generation) VALUES (0, 0);
CREATE TRIGGER IF NOT EXISTS lake_files_insert_generation AFTER INSERT ON lake_files
BEGIN UPDATE lake_generation SET generation = generation + 1 WHERE id = 0; END;
CREATE TRIGGER IF NOT EXISTS lake_files_delete_generation AFTER DELETE ON lake_files
BEGIN UPDATE lake_generation SET generation = generation + 1 WHERE id = 0; END;
CREATE TRIGGER IF NOT EXISTS lake_files_update_generation AFTER UPDATE ON lake_files
BEGIN UPDATE lake_generation SET generation = generation + 1 WHERE id = 0; END;
)sql";

Json StringsToJson(const std::vector<std::string>& v) {
  Json a = Json::array();
  for (const auto& s : v) a.push_back(s);
  return a;
}

Status InsertFile(SqliteDb& db, const LakeFile& f) {
  ENGAGE_ASSIGN_OR_RETURN(auto st, db.Prepare("INSERT INTO lake_files(path, table_name, dt, rows,"
                                              " bytes, ingest_id) VALUES (?,?,?,?,?,?)"));
  st.Bind(1, f.path)
      .Bind(2, f.table)
      .Bind(3, f.dt)
      .Bind(4, f.rows)
      .Bind(5, f.bytes)
      .Bind(6, f.ingest_id);
  return st.Run();
}

IngestRecord ReadIngestRow(SqliteStmt& st) {
  IngestRecord r;
  r.id = st.Text(0);
  r.table = st.Text(1);
  r.started_at = st.Text(2);
  r.finished_at = st.Text(3);
  r.rows_read = st.Int(4);
  r.rows_accepted = st.Int(5);
  r.rows_rejected = st.Int(6);
  r.bytes_written = st.Int(7);
  r.files_written = st.Int(8);
  Json parts = Json::parse(st.Text(9), nullptr, false);
  if (parts.is_array()) {
    for (const auto& p : parts) r.partitions.push_back(p.get<std::string>());
  }
  r.duration_ms = st.Double(10);
  r.quarantine_path = st.Text(11);
  return r;
}

// The first column of every remaining row, as text.
Result<std::vector<std::string>> FirstColumn(SqliteStmt& st) {
  std::vector<std::string> out;
  for (;;) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back(st.Text(0));
  }
  return out;
}

constexpr const char* kIngestColumns =
    "id, table_name, started_at, finished_at, rows_read, rows_accepted, rows_rejected, "
    "bytes_written, files_written, partitions, duration_ms, quarantine_path";

}  // namespace

Json PartitionStats::ToJson() const {
  return Json{{"dt", dt}, {"files", files}, {"rows", rows}, {"bytes", bytes}};
}

Json QueryRecord::ToJson() const {
  return Json{{"at", at},
              {"sql", sql},
              {"status", status},
              {"error", error},
              {"bytes_scanned", bytes_scanned},
              {"estimated_bytes", estimated_bytes},
              {"partitions_scanned", partitions_scanned},
              {"rows", rows},
              {"elapsed_ms", elapsed_ms},
              {"cost_usd", cost_usd},
              {"source", source}};
}

Json IngestRecord::ToJson() const {
  Json j;
  j["ingest_id"] = id;
  j["table"] = table;
  j["started_at"] = started_at;
  j["finished_at"] = finished_at;
  j["rows_read"] = rows_read;
  j["rows_accepted"] = rows_accepted;
  j["rows_rejected"] = rows_rejected;
  j["bytes_written"] = bytes_written;
  j["files_written"] = files_written;
  j["partitions"] = StringsToJson(partitions);
  j["duration_ms"] = duration_ms;
  j["quarantine_path"] = quarantine_path;
  Json srcs = Json::array();
  for (const auto& s : sources) {
    srcs.push_back({{"path", s.path},
                    {"sha256", s.sha256},
                    {"bytes", s.bytes},
                    {"rows_read", s.rows_read},
                    {"rows_rejected", s.rows_rejected}});
  }
  j["sources"] = srcs;
  return j;
}

Result<Catalog> Catalog::Open(const std::string& meta_db_path) {
  ENGAGE_ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(meta_db_path));
  Catalog c(std::move(db));
  ENGAGE_RETURN_IF_ERROR(c.Migrate());
  return c;
}

Status Catalog::Migrate() {
  ENGAGE_RETURN_IF_ERROR(db_.Exec(kSchema));
  ENGAGE_ASSIGN_OR_RETURN(auto st, db_.Prepare("SELECT max(version) FROM schema_version"));
  ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
  if (row && !st.IsNull(0)) {
    int64_t v = st.Int(0);
    if (v > kSchemaVersion) {
      return FailedPreconditionError(
          fmt::format("{} has schema version {}, newer than this engage ({}); upgrade engage",
                      db_.path(), v, kSchemaVersion));
    }
    return Status::Ok();
  }
  return db_.Exec(fmt::format("INSERT INTO schema_version VALUES ({})", kSchemaVersion));
}

Result<std::vector<LakeFile>> Catalog::Files(const std::string& table) {
  ENGAGE_ASSIGN_OR_RETURN(auto st, db_.Prepare("SELECT path, table_name, dt, rows, bytes, "
                                               "ingest_id FROM lake_files WHERE table_name = ? "
                                               "ORDER BY dt, path"));
  st.Bind(1, table);
  std::vector<LakeFile> out;
  for (;;) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back({st.Text(0), st.Text(1), st.Text(2), st.Int(3), st.Int(4), st.Text(5)});
  }
  return out;
}

Result<int64_t> Catalog::Generation() {
  if (!generation_stmt_) {
    ENGAGE_ASSIGN_OR_RETURN(auto st,
                            db_.Prepare("SELECT generation FROM lake_generation WHERE id = 0"));
    generation_stmt_ = std::make_unique<SqliteStmt>(std::move(st));
  }
  SqliteStmt& st = *generation_stmt_;
  st.Reset();
  ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
  int64_t g = row ? st.Int(0) : 0;
  st.Reset();  // ends the read transaction
  return g;
}

Result<FileSnapshot> Catalog::Snapshot() {
  // One read transaction: the generation and the files agree.
  ENGAGE_RETURN_IF_ERROR(db_.Exec("BEGIN"));
  Cleanup end([this] { (void)db_.Exec("COMMIT"); });
  FileSnapshot out;
  ENGAGE_ASSIGN_OR_RETURN(out.generation, Generation());
  ENGAGE_ASSIGN_OR_RETURN(auto st, db_.Prepare("SELECT path, table_name, dt, rows, bytes, "
                                               "ingest_id FROM lake_files ORDER BY table_name, "
                                               "dt, path"));
  for (;;) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.files.push_back({st.Text(0), st.Text(1), st.Text(2), st.Int(3), st.Int(4), st.Text(5)});
  }
  return out;
}

Result<std::vector<PartitionStats>> Catalog::Partitions(const std::string& table) {
  ENGAGE_ASSIGN_OR_RETURN(auto st, db_.Prepare("SELECT dt, count(*), sum(rows), sum(bytes) FROM "
                                               "lake_files WHERE table_name = ? GROUP BY dt "
                                               "ORDER BY dt"));
  st.Bind(1, table);
  std::vector<PartitionStats> out;
  for (;;) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back({st.Text(0), st.Int(1), st.Int(2), st.Int(3)});
  }
  return out;
}

Result<std::vector<std::string>> Catalog::AllPaths() {
  ENGAGE_ASSIGN_OR_RETURN(auto st, db_.Prepare("SELECT path FROM lake_files"));
  return FirstColumn(st);
}

Result<std::optional<IngestRecord>> Catalog::FindIngest(const std::string& id) {
  ENGAGE_ASSIGN_OR_RETURN(
      auto st, db_.Prepare(fmt::format("SELECT {} FROM ingests WHERE id = ?", kIngestColumns)));
  st.Bind(1, id);
  ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<IngestRecord>();
  IngestRecord rec = ReadIngestRow(st);
  ENGAGE_ASSIGN_OR_RETURN(auto src, db_.Prepare("SELECT path, sha256, bytes, rows_read, "
                                                "rows_rejected FROM ingest_sources WHERE "
                                                "ingest_id = ? ORDER BY path"));
  src.Bind(1, id);
  for (;;) {
    ENGAGE_ASSIGN_OR_RETURN(bool r, src.Step());
    if (!r) break;
    rec.sources.push_back({src.Text(0), src.Text(1), src.Int(2), src.Int(3), src.Int(4)});
  }
  return std::optional<IngestRecord>(std::move(rec));
}

Result<std::optional<std::string>> Catalog::FindSource(const std::string& table,
                                                       const std::string& sha256) {
  ENGAGE_ASSIGN_OR_RETURN(auto st, db_.Prepare("SELECT ingest_id FROM ingest_sources WHERE "
                                               "table_name = ? AND sha256 = ? LIMIT 1"));
  st.Bind(1, table).Bind(2, sha256);
  ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(st.Text(0));
}

Result<std::vector<IngestRecord>> Catalog::RecentIngests(int64_t limit) {
  ENGAGE_ASSIGN_OR_RETURN(
      auto st, db_.Prepare(fmt::format("SELECT {} FROM ingests ORDER BY finished_at DESC LIMIT ?",
                                       kIngestColumns)));
  st.Bind(1, limit);
  std::vector<IngestRecord> out;
  for (;;) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back(ReadIngestRow(st));
  }
  return out;
}

Status Catalog::CommitIngest(const IngestRecord& rec, const std::vector<LakeFile>& files) {
  ENGAGE_ASSIGN_OR_RETURN(auto txn, SqliteTxn::Begin(db_));
  ENGAGE_ASSIGN_OR_RETURN(auto exists, db_.Prepare("SELECT 1 FROM ingests WHERE id = ?"));
  exists.Bind(1, rec.id);
  ENGAGE_ASSIGN_OR_RETURN(bool dup, exists.Step());
  if (dup) return AlreadyExistsError(fmt::format("ingest '{}' was already committed", rec.id));
  ENGAGE_ASSIGN_OR_RETURN(
      auto ins, db_.Prepare(fmt::format("INSERT INTO ingests({}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                                        kIngestColumns)));
  ins.Bind(1, rec.id)
      .Bind(2, rec.table)
      .Bind(3, rec.started_at)
      .Bind(4, rec.finished_at)
      .Bind(5, rec.rows_read)
      .Bind(6, rec.rows_accepted)
      .Bind(7, rec.rows_rejected)
      .Bind(8, rec.bytes_written)
      .Bind(9, rec.files_written)
      .Bind(10, DumpJson(StringsToJson(rec.partitions)))
      .Bind(11, rec.duration_ms)
      .Bind(12, rec.quarantine_path);
  ENGAGE_RETURN_IF_ERROR(ins.Run());
  ENGAGE_ASSIGN_OR_RETURN(auto src, db_.Prepare("INSERT INTO ingest_sources(ingest_id, "
                                                "table_name, path, sha256, bytes, rows_read, "
                                                "rows_rejected) VALUES (?,?,?,?,?,?,?)"));
  for (const auto& s : rec.sources) {
    src.Reset();
    src.Bind(1, rec.id).Bind(2, rec.table).Bind(3, s.path).Bind(4, s.sha256).Bind(5, s.bytes);
    src.Bind(6, s.rows_read).Bind(7, s.rows_rejected);
    ENGAGE_RETURN_IF_ERROR(src.Run());
  }
  for (const auto& f : files) ENGAGE_RETURN_IF_ERROR(InsertFile(db_, f));
  return txn->Commit();
}

Status Catalog::ReplaceFiles(const std::string& table, const std::vector<std::string>& removed,
                             const std::vector<LakeFile>& added, const std::string& kind,
                             const Json& details, const std::string& at) {
  ENGAGE_ASSIGN_OR_RETURN(auto txn, SqliteTxn::Begin(db_));
  ENGAGE_ASSIGN_OR_RETURN(auto del,
                          db_.Prepare("DELETE FROM lake_files WHERE path = ? AND table_name = ?"));
  ENGAGE_ASSIGN_OR_RETURN(auto trash, db_.Prepare("INSERT OR REPLACE INTO lake_trash(path, "
                                                  "removed_at) VALUES (?, ?)"));
  for (const auto& p : removed) {
    del.Reset();
    del.Bind(1, p).Bind(2, table);
    ENGAGE_RETURN_IF_ERROR(del.Run());
    if (db_.Changes() != 1) {
      return AbortedError(fmt::format("file '{}' of table '{}' changed concurrently", p, table));
    }
    trash.Reset();
    trash.Bind(1, p).Bind(2, at);
    ENGAGE_RETURN_IF_ERROR(trash.Run());
  }
  for (const auto& f : added) ENGAGE_RETURN_IF_ERROR(InsertFile(db_, f));
  ENGAGE_RETURN_IF_ERROR(LogEvent(kind, table, details, at));
  return txn->Commit();
}

Result<std::vector<std::string>> Catalog::TakeTrash(const std::string& before) {
  ENGAGE_ASSIGN_OR_RETURN(
      auto st, db_.Prepare("DELETE FROM lake_trash WHERE removed_at <= ? RETURNING path"));
  st.Bind(1, before);
  return FirstColumn(st);
}

Result<std::vector<std::string>> Catalog::TrashPaths() {
  ENGAGE_ASSIGN_OR_RETURN(auto st, db_.Prepare("SELECT path FROM lake_trash"));
  return FirstColumn(st);
}

Status Catalog::LogEvent(const std::string& kind, const std::string& table, const Json& details,
                         const std::string& at) {
  ENGAGE_ASSIGN_OR_RETURN(auto st, db_.Prepare("INSERT INTO lake_log(at, kind, table_name, "
                                               "details) VALUES (?,?,?,?)"));
  st.Bind(1, at).Bind(2, kind).Bind(3, table).Bind(4, DumpJson(details));
  return st.Run();
}

Result<std::vector<Json>> Catalog::Log(const std::string& kind, int64_t limit) {
  ENGAGE_ASSIGN_OR_RETURN(auto st, db_.Prepare("SELECT at, kind, table_name, details FROM "
                                               "lake_log WHERE kind = ? OR ? = '' ORDER BY id "
                                               "DESC LIMIT ?"));
  st.Bind(1, kind).Bind(2, kind).Bind(3, limit);
  std::vector<Json> out;
  for (;;) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    Json d = Json::parse(st.Text(3), nullptr, false);
    out.push_back(
        {{"at", st.Text(0)}, {"kind", st.Text(1)}, {"table", st.Text(2)}, {"details", d}});
  }
  return out;
}

Status Catalog::RecordQuery(const QueryRecord& q) {
  // One row per query: a prepared statement kept for the next (an autocommit insert in WAL mode
  // with synchronous=NORMAL, no fsync).
  if (!record_query_stmt_) {
    ENGAGE_ASSIGN_OR_RETURN(auto prepared,
                            db_.Prepare("INSERT INTO query_history(at, sql, status, "
                                        "error, bytes_scanned, estimated_bytes, "
                                        "partitions_scanned, rows, elapsed_ms, cost_usd, "
                                        "source) VALUES (?,?,?,?,?,?,?,?,?,?,?)"));
    record_query_stmt_ = std::make_unique<SqliteStmt>(std::move(prepared));
  }
  SqliteStmt& st = *record_query_stmt_;
  st.Reset();
  st.Bind(1, q.at).Bind(2, q.sql).Bind(3, q.status).Bind(4, q.error).Bind(5, q.bytes_scanned);
  st.Bind(6, q.estimated_bytes).Bind(7, q.partitions_scanned).Bind(8, q.rows);
  st.Bind(9, q.elapsed_ms).Bind(10, q.cost_usd).Bind(11, q.source);
  Status s = st.Run();
  st.Reset();
  return s;
}

Json LedgerEntry::ToJson() const {
  Json j{{"at", at},
         {"kind", kind},
         {"name", name},
         {"id", id},
         {"parent", parent},
         {"execution_id", execution_id},
         {"pipeline", pipeline},
         {"step", step},
         {"model", model},
         {"tables", tables},
         {"cloud_usd", cloud_usd},
         {"detail", detail}};
  j.update(usage.ToJson());
  return j;
}

Status Catalog::RecordCost(const LedgerEntry& e) {
  if (!record_cost_stmt_) {
    ENGAGE_ASSIGN_OR_RETURN(
        auto prepared,
        db_.Prepare("INSERT INTO cost_ledger(at, kind, name, id, parent, execution_id, pipeline, "
                    "step, model, tables, cpu_seconds, wall_seconds, bytes_read, bytes_written, "
                    "peak_memory_bytes, cloud_usd, detail) VALUES "
                    "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"));
    record_cost_stmt_ = std::make_unique<SqliteStmt>(std::move(prepared));
  }
  SqliteStmt& st = *record_cost_stmt_;
  st.Reset();
  st.Bind(1, e.at).Bind(2, e.kind).Bind(3, e.name).Bind(4, e.id).Bind(5, e.parent);
  st.Bind(6, e.execution_id).Bind(7, e.pipeline).Bind(8, e.step).Bind(9, e.model);
  st.Bind(10, e.tables).Bind(11, e.usage.cpu_seconds).Bind(12, e.usage.wall_seconds);
  st.Bind(13, e.usage.bytes_read).Bind(14, e.usage.bytes_written);
  st.Bind(15, e.usage.peak_memory_bytes).Bind(16, e.cloud_usd).Bind(17, DumpJson(e.detail));
  Status s = st.Run();
  st.Reset();
  return s;
}

Result<std::vector<QueryRecord>> Catalog::QueryHistory(int64_t limit) {
  ENGAGE_ASSIGN_OR_RETURN(auto st, db_.Prepare("SELECT at, sql, status, error, bytes_scanned, "
                                               "estimated_bytes, partitions_scanned, rows, "
                                               "elapsed_ms, cost_usd, source FROM query_history "
                                               "ORDER BY id DESC LIMIT ?"));
  st.Bind(1, limit);
  std::vector<QueryRecord> out;
  for (;;) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    QueryRecord q;
    q.at = st.Text(0);
    q.sql = st.Text(1);
    q.status = st.Text(2);
    q.error = st.Text(3);
    q.bytes_scanned = st.Int(4);
    q.estimated_bytes = st.Int(5);
    q.partitions_scanned = st.Int(6);
    q.rows = st.Int(7);
    q.elapsed_ms = st.Double(8);
    q.cost_usd = st.Double(9);
    q.source = st.Text(10);
    out.push_back(std::move(q));
  }
  return out;
}

}  // namespace engage::lake
