#include "engage/core/sqlite.h"

#include <fmt/format.h>

namespace engage {
namespace {

Status SqliteError(sqlite3* db, int rc, const std::string& what) {
  std::string msg = fmt::format("{}: {}", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  int primary = rc & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) return UnavailableError(msg);
  if (primary == SQLITE_FULL) return ResourceExhaustedError(msg);
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) return DataLossError(msg);
  if (primary == SQLITE_CONSTRAINT) return AlreadyExistsError(msg);
  if (primary == SQLITE_CANTOPEN || primary == SQLITE_PERM || primary == SQLITE_READONLY) {
    return PermissionDeniedError(msg);
  }
  return InternalError(msg);
}

}  // namespace

SqliteStmt& SqliteStmt::operator=(SqliteStmt&& o) noexcept {
  if (this != &o) {
    if (st_) sqlite3_finalize(st_);
    st_ = o.st_;
    db_ = o.db_;
    o.st_ = nullptr;
  }
  return *this;
}

SqliteStmt::~SqliteStmt() {
  if (st_) sqlite3_finalize(st_);
}

SqliteStmt& SqliteStmt::Bind(int idx, int64_t v) {
  sqlite3_bind_int64(st_, idx, v);
  return *this;
}
SqliteStmt& SqliteStmt::Bind(int idx, double v) {
  sqlite3_bind_double(st_, idx, v);
  return *this;
}
SqliteStmt& SqliteStmt::Bind(int idx, const std::string& v) {
  sqlite3_bind_text(st_, idx, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
SqliteStmt& SqliteStmt::BindNull(int idx) {
  sqlite3_bind_null(st_, idx);
  return *this;
}

Result<bool> SqliteStmt::Step() {
  int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, rc, "sqlite step");
}

Status SqliteStmt::Run() {
  for (;;) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Status::Ok();
  }
}

void SqliteStmt::Reset() {
  sqlite3_reset(st_);
  sqlite3_clear_bindings(st_);
}

std::string SqliteStmt::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(st_, col);
  if (!p) return {};
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(st_, col)));
}

Result<SqliteDb> SqliteDb::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status s = SqliteError(db, rc, fmt::format("cannot open database '{}'", path));
    sqlite3_close(db);
    return s;
  }
  SqliteDb out(db, path);
  sqlite3_busy_timeout(db, 10000);
  ENGAGE_RETURN_IF_ERROR(
      out.Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
               "PRAGMA foreign_keys=ON;"));
  return out;
}

SqliteDb& SqliteDb::operator=(SqliteDb&& o) noexcept {
  if (this != &o) {
    if (db_) sqlite3_close(db_);
    db_ = o.db_;
    path_ = std::move(o.path_);
    o.db_ = nullptr;
  }
  return *this;
}

SqliteDb::~SqliteDb() {
  if (db_) sqlite3_close(db_);
}

Status SqliteDb::Exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return SqliteError(nullptr, rc, msg).WithContext(path_);
  }
  return Status::Ok();
}

Result<SqliteStmt> SqliteDb::Prepare(const std::string& sql) {
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &st, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, "sqlite prepare");
  return SqliteStmt(st, db_);
}

Result<std::unique_ptr<SqliteTxn>> SqliteTxn::Begin(SqliteDb& db) {
  ENGAGE_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  return std::unique_ptr<SqliteTxn>(new SqliteTxn(db));
}

SqliteTxn::~SqliteTxn() {
  if (!done_) (void)db_.Exec("ROLLBACK");
}

Status SqliteTxn::Commit() {
  ENGAGE_RETURN_IF_ERROR(db_.Exec("COMMIT"));
  done_ = true;
  return Status::Ok();
}

}  // namespace engage
