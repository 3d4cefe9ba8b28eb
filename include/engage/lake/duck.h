// Move-only owners for DuckDB C API handles, with errors returned as Status.
//
//   ENGAGE_ASSIGN_OR_RETURN(auto db, DuckDb::Open({}));
//   ENGAGE_ASSIGN_OR_RETURN(auto conn, db.Connect());
//   ENGAGE_ASSIGN_OR_RETURN(auto res, conn.Query("SELECT 42"));
//   int64_t v = res.Int(0, 0);
//
// Thread-safety: a DuckDb may be shared; each thread uses its own DuckConn.
#pragma once

#include <duckdb.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engage/core/json.h"
#include "engage/core/status.h"

namespace engage::lake {

struct DuckOptions {
  int threads = 0;             // 0 = DuckDB's default (all cores)
  std::string memory_limit;    // e.g. "4GB"; empty = DuckDB's default (80% of RAM)
  std::string temp_directory;  // where large operations spill
};

class DuckResult {
 public:
  DuckResult() = default;
  explicit DuckResult(duckdb_result r) : r_(r), valid_(true) {}
  DuckResult(DuckResult&& o) noexcept : r_(o.r_), valid_(o.valid_) { o.valid_ = false; }
  DuckResult& operator=(DuckResult&& o) noexcept;
  ~DuckResult();

  int64_t RowCount() { return static_cast<int64_t>(duckdb_row_count(&r_)); }
  int ColumnCount() { return static_cast<int>(duckdb_column_count(&r_)); }
  std::string ColumnName(int col) { return duckdb_column_name(&r_, col); }
  duckdb_type ColumnType(int col) { return duckdb_column_type(&r_, col); }
  // SQL name of the column's type, e.g. "BIGINT", "TIMESTAMP", "LIST".
  std::string ColumnTypeName(int col);
  bool IsNull(int col, int64_t row) { return duckdb_value_is_null(&r_, col, row); }
  int64_t Int(int col, int64_t row) { return duckdb_value_int64(&r_, col, row); }
  double Double(int col, int64_t row) { return duckdb_value_double(&r_, col, row); }
  bool Bool(int col, int64_t row) { return duckdb_value_boolean(&r_, col, row); }
  // Text of any value; nullopt for NULL.
  std::optional<std::string> Str(int col, int64_t row);
  // Number of rows changed by the statement (e.g. COPY: rows written).
  int64_t RowsChanged() { return static_cast<int64_t>(duckdb_rows_changed(&r_)); }

 private:
  duckdb_result r_{};
  bool valid_ = false;
};

class DuckConn {
 public:
  DuckConn() = default;
  explicit DuckConn(duckdb_connection c) : c_(c) {}
  DuckConn(DuckConn&& o) noexcept : c_(o.c_) { o.c_ = nullptr; }
  DuckConn& operator=(DuckConn&& o) noexcept;
  ~DuckConn();

  // Runs statements whose results are not needed.
  Status Exec(const std::string& sql);
  // Runs one query. Errors keep DuckDB's message; kInvalidArgument for SQL errors.
  Result<DuckResult> Query(const std::string& sql);
  // Interrupts a running query on this connection (safe from another thread).
  void Interrupt();
  duckdb_connection raw() { return c_; }

 private:
  duckdb_connection c_ = nullptr;
};

class DuckDb {
 public:
  static Result<DuckDb> Open(const DuckOptions& opts);
  DuckDb(DuckDb&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
  DuckDb& operator=(DuckDb&& o) noexcept;
  ~DuckDb();

  Result<DuckConn> Connect();

 private:
  explicit DuckDb(duckdb_database db) : db_(db) {}
  duckdb_database db_ = nullptr;
};

// 'it''s' — a SQL string literal.
std::string SqlQuote(std::string_view s);
// "col" — a SQL identifier.
std::string SqlIdent(std::string_view s);
// ['a', 'b'] — a list literal of strings.
std::string SqlList(const std::vector<std::string>& items);

}  // namespace engage::lake
