#include "engage/lake/duck.h"

#include <fmt/format.h>

namespace engage::lake {
namespace {

Status DuckError(const char* msg, duckdb_error_type type) {
  std::string m = msg ? msg : "unknown DuckDB error";
  switch (type) {
    case DUCKDB_ERROR_PARSER:
    case DUCKDB_ERROR_BINDER:
    case DUCKDB_ERROR_CATALOG:
    case DUCKDB_ERROR_INVALID_INPUT:
    case DUCKDB_ERROR_CONVERSION:
    case DUCKDB_ERROR_INVALID_TYPE:
    case DUCKDB_ERROR_SYNTAX:
    case DUCKDB_ERROR_CONSTRAINT:
    case DUCKDB_ERROR_MISMATCH_TYPE:
    case DUCKDB_ERROR_OUT_OF_RANGE:
    case DUCKDB_ERROR_DIVIDE_BY_ZERO:
      return InvalidArgumentError(std::move(m));
    case DUCKDB_ERROR_PERMISSION:
      return PermissionDeniedError(std::move(m));
    case DUCKDB_ERROR_OUT_OF_MEMORY:
      return ResourceExhaustedError(std::move(m));
    case DUCKDB_ERROR_INTERRUPT:
      return Status(StatusCode::kCancelled, std::move(m));
    case DUCKDB_ERROR_IO:
      return UnavailableError(std::move(m));
    default:
      return InternalError(std::move(m));
  }
}

}  // namespace

DuckResult& DuckResult::operator=(DuckResult&& o) noexcept {
  if (this != &o) {
    if (valid_) duckdb_destroy_result(&r_);
    r_ = o.r_;
    valid_ = o.valid_;
    o.valid_ = false;
  }
  return *this;
}

DuckResult::~DuckResult() {
  if (valid_) duckdb_destroy_result(&r_);
}

std::optional<std::string> DuckResult::Str(int col, int64_t row) {
  if (duckdb_value_is_null(&r_, col, row)) return std::nullopt;
  char* s = duckdb_value_varchar(&r_, col, row);
  if (!s) return std::nullopt;
  std::string out(s);
  duckdb_free(s);
  return out;
}

std::string DuckResult::ColumnTypeName(int col) {
  switch (ColumnType(col)) {
    case DUCKDB_TYPE_BOOLEAN:
      return "BOOLEAN";
    case DUCKDB_TYPE_TINYINT:
      return "TINYINT";
    case DUCKDB_TYPE_SMALLINT:
      return "SMALLINT";
    case DUCKDB_TYPE_INTEGER:
      return "INTEGER";
    case DUCKDB_TYPE_BIGINT:
      return "BIGINT";
    case DUCKDB_TYPE_HUGEINT:
      return "HUGEINT";
    case DUCKDB_TYPE_UHUGEINT:
      return "UHUGEINT";
    case DUCKDB_TYPE_UTINYINT:
      return "UTINYINT";
    case DUCKDB_TYPE_USMALLINT:
      return "USMALLINT";
    case DUCKDB_TYPE_UINTEGER:
      return "UINTEGER";
    case DUCKDB_TYPE_UBIGINT:
      return "UBIGINT";
    case DUCKDB_TYPE_FLOAT:
      return "FLOAT";
    case DUCKDB_TYPE_DOUBLE:
      return "DOUBLE";
    case DUCKDB_TYPE_DECIMAL:
      return "DECIMAL";
    case DUCKDB_TYPE_VARCHAR:
      return "VARCHAR";
    case DUCKDB_TYPE_BLOB:
      return "BLOB";
    case DUCKDB_TYPE_DATE:
      return "DATE";
    case DUCKDB_TYPE_TIME:
      return "TIME";
    case DUCKDB_TYPE_TIMESTAMP:
      return "TIMESTAMP";
    case DUCKDB_TYPE_TIMESTAMP_TZ:
      return "TIMESTAMPTZ";
    case DUCKDB_TYPE_INTERVAL:
      return "INTERVAL";
    case DUCKDB_TYPE_UUID:
      return "UUID";
    case DUCKDB_TYPE_LIST:
      return "LIST";
    case DUCKDB_TYPE_STRUCT:
      return "STRUCT";
    case DUCKDB_TYPE_MAP:
      return "MAP";
    case DUCKDB_TYPE_ENUM:
      return "ENUM";
    default:
      return "OTHER";
  }
}

DuckConn& DuckConn::operator=(DuckConn&& o) noexcept {
  if (this != &o) {
    if (c_) duckdb_disconnect(&c_);
    c_ = o.c_;
    o.c_ = nullptr;
  }
  return *this;
}

DuckConn::~DuckConn() {
  if (c_) duckdb_disconnect(&c_);
}

Status DuckConn::Exec(const std::string& sql) {
  auto r = Query(sql);
  return r.status();
}

Result<DuckResult> DuckConn::Query(const std::string& sql) {
  duckdb_result r;
  if (duckdb_query(c_, sql.c_str(), &r) != DuckDBSuccess) {
    Status s = DuckError(duckdb_result_error(&r), duckdb_result_error_type(&r));
    duckdb_destroy_result(&r);
    return s;
  }
  return DuckResult(r);
}

Result<DuckPrepared> DuckPrepared::Prepare(DuckConn& conn, const std::string& sql) {
  duckdb_prepared_statement p = nullptr;
  if (duckdb_prepare(conn.raw(), sql.c_str(), &p) != DuckDBSuccess) {
    const char* err = duckdb_prepare_error(p);
    Status s = InvalidArgumentError(err ? err : "cannot prepare the statement");
    duckdb_destroy_prepare(&p);
    return s;
  }
  return DuckPrepared(p);
}

DuckPrepared& DuckPrepared::operator=(DuckPrepared&& o) noexcept {
  if (this != &o) {
    if (p_) duckdb_destroy_prepare(&p_);
    p_ = o.p_;
    o.p_ = nullptr;
  }
  return *this;
}

DuckPrepared::~DuckPrepared() {
  if (p_) duckdb_destroy_prepare(&p_);
}

Result<DuckResult> DuckPrepared::Run(const std::string& arg) {
  if (duckdb_bind_varchar_length(p_, 1, arg.data(), arg.size()) != DuckDBSuccess) {
    return InvalidArgumentError("cannot bind the statement's parameter");
  }
  duckdb_result r;
  if (duckdb_execute_prepared(p_, &r) != DuckDBSuccess) {
    Status s = DuckError(duckdb_result_error(&r), duckdb_result_error_type(&r));
    duckdb_destroy_result(&r);
    return s;
  }
  return DuckResult(r);
}

void DuckConn::Interrupt() {
  if (c_) duckdb_interrupt(c_);
}

Result<DuckDb> DuckDb::Open(const DuckOptions& opts) {
  duckdb_config config;
  if (duckdb_create_config(&config) != DuckDBSuccess) {
    return InternalError("cannot create DuckDB config");
  }
  auto set = [&](const char* k, const std::string& v) {
    if (!v.empty()) duckdb_set_config(config, k, v.c_str());
  };
  if (opts.threads > 0) set("threads", std::to_string(opts.threads));
  set("memory_limit", opts.memory_limit);
  set("temp_directory", opts.temp_directory);
  // Reads must hit the files each time so that bytes scanned are measured per query.
  set("enable_external_file_cache", "false");
  set("autoinstall_known_extensions", "false");
  set("autoload_known_extensions", "false");
  duckdb_database db;
  char* err = nullptr;
  duckdb_state st = duckdb_open_ext(nullptr, &db, config, &err);
  duckdb_destroy_config(&config);
  if (st != DuckDBSuccess) {
    std::string msg = err ? err : "unknown error";
    duckdb_free(err);
    return InternalError("cannot open DuckDB: " + msg);
  }
  return DuckDb(db);
}

DuckDb& DuckDb::operator=(DuckDb&& o) noexcept {
  if (this != &o) {
    if (db_) duckdb_close(&db_);
    db_ = o.db_;
    o.db_ = nullptr;
  }
  return *this;
}

DuckDb::~DuckDb() {
  if (db_) duckdb_close(&db_);
}

Result<DuckConn> DuckDb::Connect() {
  duckdb_connection c;
  if (duckdb_connect(db_, &c) != DuckDBSuccess) return InternalError("cannot connect to DuckDB");
  return DuckConn(c);
}

std::string SqlQuote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "''";
    else
      out.push_back(c);
  }
  out += "'";
  return out;
}

std::string SqlIdent(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"')
      out += "\"\"";
    else
      out.push_back(c);
  }
  out += "\"";
  return out;
}

std::string SqlList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    out += SqlQuote(items[i]);
  }
  return out + "]";
}

}  // namespace engage::lake
