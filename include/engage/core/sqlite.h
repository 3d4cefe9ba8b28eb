// Move-only owners for SQLite handles, with errors returned as Status.
//
//   ENGAGE_ASSIGN_OR_RETURN(auto db, SqliteDb::Open(path));
//   ENGAGE_ASSIGN_OR_RETURN(auto st, db.Prepare("SELECT n FROM t WHERE id = ?"));
//   st.Bind(1, id);
//   while (true) { ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step()); if (!row) break; ... }
//
// Thread-safety: one SqliteDb per thread (SQLite's multi-thread mode); the database file may be
// shared across threads and processes (WAL mode, busy timeout).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "engage/core/status.h"

namespace engage {

class SqliteStmt {
 public:
  SqliteStmt() = default;
  SqliteStmt(sqlite3_stmt* st, sqlite3* db) : st_(st), db_(db) {}
  SqliteStmt(SqliteStmt&& o) noexcept : st_(o.st_), db_(o.db_) { o.st_ = nullptr; }
  SqliteStmt& operator=(SqliteStmt&& o) noexcept;
  ~SqliteStmt();

  SqliteStmt& Bind(int idx, int64_t v);
  SqliteStmt& Bind(int idx, double v);
  SqliteStmt& Bind(int idx, const std::string& v);
  SqliteStmt& BindNull(int idx);
  // True if a row is available, false when done.
  Result<bool> Step();
  // Runs to completion (for statements without rows).
  Status Run();
  void Reset();

  int64_t Int(int col) const { return sqlite3_column_int64(st_, col); }
  double Double(int col) const { return sqlite3_column_double(st_, col); }
  std::string Text(int col) const;
  bool IsNull(int col) const { return sqlite3_column_type(st_, col) == SQLITE_NULL; }

 private:
  sqlite3_stmt* st_ = nullptr;
  sqlite3* db_ = nullptr;
};

class SqliteDb {
 public:
  // Opens (creating) `path` in WAL mode with foreign keys on and a 10 s busy timeout.
  static Result<SqliteDb> Open(const std::string& path);

  SqliteDb(SqliteDb&& o) noexcept : db_(o.db_), path_(std::move(o.path_)) { o.db_ = nullptr; }
  SqliteDb& operator=(SqliteDb&& o) noexcept;
  ~SqliteDb();

  Status Exec(const std::string& sql);
  Result<SqliteStmt> Prepare(const std::string& sql);
  int64_t LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }
  int64_t Changes() const { return sqlite3_changes64(db_); }
  const std::string& path() const { return path_; }

 private:
  SqliteDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_ = nullptr;
  std::string path_;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back in the destructor unless Commit() succeeded.
class SqliteTxn {
 public:
  static Result<std::unique_ptr<SqliteTxn>> Begin(SqliteDb& db);
  ~SqliteTxn();
  Status Commit();

 private:
  explicit SqliteTxn(SqliteDb& db) : db_(db) {}
  SqliteDb& db_;
  bool done_ = false;
};

}  // namespace engage
