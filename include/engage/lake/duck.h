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
#include <fmt/format.h>

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

// A statement prepared once on a connection and run many times with one text parameter ($1):
// parsing and binding the statement are paid once.
//
//   ENGAGE_ASSIGN_OR_RETURN(auto p, DuckPrepared::Prepare(conn, "SELECT upper($1::VARCHAR)"));
//   ENGAGE_ASSIGN_OR_RETURN(auto res, p.Run("x"));
class DuckPrepared {
 public:
  // kInvalidArgument with DuckDB's message if the statement does not prepare.
  static Result<DuckPrepared> Prepare(DuckConn& conn, const std::string& sql);
  DuckPrepared() = default;
  DuckPrepared(DuckPrepared&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  DuckPrepared& operator=(DuckPrepared&& o) noexcept;
  ~DuckPrepared();

  // Runs the statement with $1 = `arg`. Errors as DuckConn::Query.
  Result<DuckResult> Run(const std::string& arg);

 private:
  explicit DuckPrepared(duckdb_prepared_statement p) : p_(p) {}
  duckdb_prepared_statement p_ = nullptr;
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

// Appends rows to a DuckDB table through data chunks (column vectors written directly): the
// fast way to load millions of rows computed in C++.
//
//   ChunkWriter w(conn, "scores", {DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_DOUBLE});
//   w.SetString(0, id.data(), id.size()); w.Set<double>(1, score);
//   ENGAGE_RETURN_IF_ERROR(w.Commit());   // per row
//   ENGAGE_RETURN_IF_ERROR(w.Close());
class ChunkWriter {
 public:
  ChunkWriter(DuckConn& conn, const std::string& table, std::vector<duckdb_type> types)
      : types_(std::move(types)) {
    duckdb_appender_create(conn.raw(), nullptr, table.c_str(), &appender_);
    for (auto t : types_) logical_.push_back(duckdb_create_logical_type(t));
    chunk_ = duckdb_create_data_chunk(logical_.data(), logical_.size());
    Bind();
  }
  ~ChunkWriter() {
    duckdb_destroy_data_chunk(&chunk_);
    for (auto& l : logical_) duckdb_destroy_logical_type(&l);
    duckdb_appender_destroy(&appender_);
  }
  ChunkWriter(const ChunkWriter&) = delete;
  ChunkWriter& operator=(const ChunkWriter&) = delete;

  // Index of the row being written; call Commit() after filling it.
  idx_t row() const { return n_; }
  template <typename T>
  void Set(int col, T v) {
    static_cast<T*>(data_[col])[n_] = v;
  }
  void SetString(int col, const char* s, size_t len) {
    duckdb_vector_assign_string_element_len(vec_[col], n_, s, len);
  }
  void SetNull(int col) {
    duckdb_vector_ensure_validity_writable(vec_[col]);
    duckdb_validity_set_row_invalid(duckdb_vector_get_validity(vec_[col]), n_);
  }
  Status Commit() {
    if (++n_ == duckdb_vector_size()) return Flush();
    return Status::Ok();
  }
  Status Flush() {
    if (n_ == 0) return Status::Ok();
    duckdb_data_chunk_set_size(chunk_, n_);
    if (duckdb_append_data_chunk(appender_, chunk_) != DuckDBSuccess) {
      return InternalError(
          fmt::format("appending generated rows failed: {}", duckdb_appender_error(appender_)));
    }
    duckdb_data_chunk_reset(chunk_);
    n_ = 0;
    Bind();
    return Status::Ok();
  }
  Status Close() {
    ENGAGE_RETURN_IF_ERROR(Flush());
    if (duckdb_appender_close(appender_) != DuckDBSuccess) {
      return InternalError(
          fmt::format("closing appender failed: {}", duckdb_appender_error(appender_)));
    }
    return Status::Ok();
  }

 private:
  void Bind() {
    vec_.clear();
    data_.clear();
    for (idx_t c = 0; c < types_.size(); ++c) {
      duckdb_vector v = duckdb_data_chunk_get_vector(chunk_, c);
      vec_.push_back(v);
      data_.push_back(duckdb_vector_get_data(v));
    }
  }

  std::vector<duckdb_type> types_;
  std::vector<duckdb_logical_type> logical_;
  duckdb_appender appender_ = nullptr;
  duckdb_data_chunk chunk_ = nullptr;
  std::vector<duckdb_vector> vec_;
  std::vector<void*> data_;
  idx_t n_ = 0;
};

// 'it''s' — a SQL string literal.
std::string SqlQuote(std::string_view s);
// "col" — a SQL identifier.
std::string SqlIdent(std::string_view s);
// ['a', 'b'] — a list literal of strings.
std::string SqlList(const std::vector<std::string>& items);

}  // namespace engage::lake
