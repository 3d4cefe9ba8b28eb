#include "engage/sql/query.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include "engage/core/log.h"

namespace engage::sql {
namespace {

using lake::DuckConn;
using lake::DuckDb;
using lake::DuckResult;
using lake::SqlIdent;
using lake::SqlList;
using lake::SqlQuote;

std::mutex& MeterMutex() {
  static std::mutex mu;
  return mu;
}

const char* StatementTypeName(duckdb_statement_type t) {
  switch (t) {
    case DUCKDB_STATEMENT_TYPE_SELECT:
      return "SELECT";
    case DUCKDB_STATEMENT_TYPE_INSERT:
      return "INSERT";
    case DUCKDB_STATEMENT_TYPE_UPDATE:
      return "UPDATE";
    case DUCKDB_STATEMENT_TYPE_DELETE:
      return "DELETE";
    case DUCKDB_STATEMENT_TYPE_CREATE:
      return "CREATE";
    case DUCKDB_STATEMENT_TYPE_DROP:
      return "DROP";
    case DUCKDB_STATEMENT_TYPE_ALTER:
      return "ALTER";
    case DUCKDB_STATEMENT_TYPE_COPY:
      return "COPY";
    case DUCKDB_STATEMENT_TYPE_ATTACH:
      return "ATTACH";
    case DUCKDB_STATEMENT_TYPE_DETACH:
      return "DETACH";
    case DUCKDB_STATEMENT_TYPE_PRAGMA:
      return "PRAGMA";
    case DUCKDB_STATEMENT_TYPE_SET:
      return "SET";
    case DUCKDB_STATEMENT_TYPE_LOAD:
      return "LOAD/INSTALL";
    case DUCKDB_STATEMENT_TYPE_EXPORT:
      return "EXPORT";
    case DUCKDB_STATEMENT_TYPE_CALL:
      return "CALL";
    case DUCKDB_STATEMENT_TYPE_TRANSACTION:
      return "TRANSACTION";
    case DUCKDB_STATEMENT_TYPE_EXPLAIN:
      return "EXPLAIN";
    default:
      return "non-SELECT";
  }
}

// Owns a prepared statement.
class Prepared {
 public:
  ~Prepared() {
    if (p_) duckdb_destroy_prepare(&p_);
  }
  duckdb_prepared_statement* out() { return &p_; }
  duckdb_prepared_statement get() { return p_; }

 private:
  duckdb_prepared_statement p_ = nullptr;
};

class Extracted {
 public:
  ~Extracted() {
    if (e_) duckdb_destroy_extracted(&e_);
  }
  duckdb_extracted_statements* out() { return &e_; }
  duckdb_extracted_statements get() { return e_; }

 private:
  duckdb_extracted_statements e_ = nullptr;
};

Status ClassifyError(const std::string& msg) {
  if (msg.find("disabled by configuration") != std::string::npos ||
      msg.find("Permission Error") != std::string::npos ||
      msg.find("not allowed") != std::string::npos) {
    return PermissionDeniedError(
        "only the lake's tables can be read; file access and configuration changes are not "
        "allowed (" +
        msg.substr(0, msg.find('\n')) + ")");
  }
  return InvalidArgumentError(msg);
}

void WalkPlan(const Json& node, std::vector<const Json*>& scans) {
  if (node.is_array()) {
    for (const auto& n : node) WalkPlan(n, scans);
    return;
  }
  if (!node.is_object()) return;
  if (node.contains("extra_info") && node["extra_info"].is_object()) {
    const Json& info = node["extra_info"];
    if (info.contains("Function") && info["Function"].is_string() &&
        info["Function"].get<std::string>() == "READ_PARQUET") {
      scans.push_back(&info);
    }
  }
  if (node.contains("children")) WalkPlan(node["children"], scans);
}

// Names of every base table a serialized parse tree (json_serialize_sql) refers to.
void CollectTableNames(const Json& node, std::set<std::string>& out) {
  if (node.is_array()) {
    for (const auto& n : node) CollectTableNames(n, out);
    return;
  }
  if (!node.is_object()) return;
  auto type = node.find("type");
  auto name = node.find("table_name");
  if (type != node.end() && type->is_string() && *type == "BASE_TABLE" && name != node.end() &&
      name->is_string()) {
    out.insert(name->get<std::string>());
  }
  for (const auto& [k, v] : node.items()) CollectTableNames(v, out);
}

// DuckDB's to_json writes non-finite doubles as bare NaN/Infinity, which JSON lacks: quote them.
std::string QuoteNonFiniteNumbers(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\' && i + 1 < text.size()) {
        out.push_back(text[++i]);
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') in_string = true;
    bool handled = false;
    for (const char* word : {"-Infinity", "Infinity", "NaN"}) {
      size_t n = std::strlen(word);
      if (text.compare(i, n, word) == 0) {
        out += std::string("\"") + word + "\"";
        i += n - 1;
        handled = true;
        break;
      }
    }
    if (!handled) out.push_back(c);
  }
  return out;
}

std::string StripTrailing(std::string sql) {
  while (!sql.empty() &&
         (std::isspace(static_cast<unsigned char>(sql.back())) || sql.back() == ';')) {
    sql.pop_back();
  }
  return sql;
}

}  // namespace

int64_t ProcessReadBytes(int64_t* probe_bytes) {
  // One read(2) of the small file; its own bytes count towards the next reading, so callers
  // subtract `probe_bytes` from a difference of two readings.
  int fd = ::open("/proc/self/io", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  if (probe_bytes) *probe_bytes = n;
  const char* p = std::strstr(buf, "rchar:");
  return p ? std::strtoll(p + 6, nullptr, 10) : 0;
}

Json QueryResult::ToJson() const {
  Json scans_j = Json::array();
  for (const auto& s : scans) {
    scans_j.push_back({{"table", s.table},
                       {"files_scanned", s.files_scanned},
                       {"files_total", s.files_total},
                       {"partitions_scanned", s.partitions_scanned},
                       {"estimated_bytes", s.estimated_bytes},
                       {"partition_filter", s.file_filter}});
  }
  return Json{{"columns", columns},
              {"column_types", column_types},
              {"rows", rows},
              {"row_count", row_count},
              {"truncated", truncated},
              {"bytes_scanned", bytes_scanned},
              {"estimated_bytes", estimated_bytes},
              {"partitions_scanned", partitions_scanned},
              {"cost_usd", cost_usd},
              {"estimated_cost_usd", estimated_cost_usd},
              {"elapsed_ms", elapsed_ms},
              {"dry_run", dry_run},
              {"scans", scans_j}};
}

QueryEngine::QueryEngine(lake::Lake& lake, DuckDb db, DuckConn conn)
    : lake_(lake), db_(std::move(db)), conn_(std::move(conn)) {}

QueryEngine::~QueryEngine() = default;

Result<std::unique_ptr<QueryEngine>> QueryEngine::Open(lake::Lake& lake, int threads) {
  ENGAGE_ASSIGN_OR_RETURN(DuckDb db,
                          DuckDb::Open({.threads = threads, .temp_directory = lake.home().tmp()}));
  ENGAGE_ASSIGN_OR_RETURN(DuckConn conn, db.Connect());
  std::unique_ptr<QueryEngine> qe(new QueryEngine(lake, std::move(db), std::move(conn)));
  DuckConn& c = qe->conn_;
  ENGAGE_RETURN_IF_ERROR(c.Exec("SET TimeZone='UTC'"));
  // Footers are read once per process, not by EXPLAIN and again by the query.
  ENGAGE_RETURN_IF_ERROR(c.Exec("SET parquet_metadata_cache=true"));
  ENGAGE_RETURN_IF_ERROR(c.Exec(
      "CREATE TEMP TABLE __partitions (table_name VARCHAR, dt DATE, files BIGINT, bytes BIGINT)"));
  for (const auto& [name, spec] : lake.config().tables) {
    ENGAGE_ASSIGN_OR_RETURN(auto files, lake.catalog().Files(name));
    // A view with the table's columns and no rows, filtered by `where`.
    auto empty_view = [&spec](const std::string& where) {
      std::string cols;
      for (const auto& col : spec.columns) {
        cols +=
            fmt::format("CAST(NULL AS {}) AS {}, ", ColumnTypeSql(col.type), SqlIdent(col.name));
      }
      return fmt::format("SELECT {}CAST(NULL AS DATE) AS dt WHERE {}", cols, where);
    };
    std::string view;
    if (files.empty()) {
      view = empty_view("false");
    } else {
      std::vector<std::string> abs;
      std::map<std::string, std::pair<int64_t, int64_t>> parts;
      for (const auto& f : files) {
        abs.push_back(lake.AbsPath(f.path));
        parts[f.dt].first += 1;
        parts[f.dt].second += f.bytes;
        qe->bytes_per_table_[name] += f.bytes;
        qe->rows_per_table_[name] += f.rows;
      }
      qe->files_per_table_[name] = static_cast<int64_t>(files.size());
      view = fmt::format(
          "SELECT * FROM read_parquet({}, hive_partitioning=true, hive_types={{'dt': DATE}})",
          SqlList(abs));
      std::string values;
      for (const auto& [dt, fb] : parts) {
        values += fmt::format("{}({}, DATE {}, {}, {})", values.empty() ? "" : ", ", SqlQuote(name),
                              SqlQuote(dt), fb.first, fb.second);
      }
      ENGAGE_RETURN_IF_ERROR(c.Exec("INSERT INTO __partitions VALUES " + values));
    }
    Status created = c.Exec(fmt::format("CREATE TEMP VIEW {} AS {}", SqlIdent(name), view));
    if (!created.ok()) {
      // A damaged table (e.g. a data file deleted by hand) must not take the other tables down:
      // its view fails every query that reads it, with the reason.
      const std::string& m = created.message();
      std::string why =
          fmt::format("table '{}' cannot be read: {}", name, m.substr(0, m.find('\n')));
      ENGAGE_RETURN_IF_ERROR(
          c.Exec(fmt::format("CREATE TEMP VIEW {} AS {}", SqlIdent(name),
                             empty_view(fmt::format("error({}) IS NULL", SqlQuote(why))))));
    }
  }
  // The sandbox: from here on only the lake's directory is readable and nothing can be changed.
  ENGAGE_RETURN_IF_ERROR(c.Exec(
      fmt::format("SET allowed_directories={}", SqlList({lake.home().lake(), lake.home().tmp()}))));
  ENGAGE_RETURN_IF_ERROR(c.Exec("SET enable_external_access=false"));
  ENGAGE_RETURN_IF_ERROR(c.Exec("SET lock_configuration=true"));
  return qe;
}

Result<std::vector<TableScan>> QueryEngine::Estimate(const std::string& sql,
                                                     std::set<std::string> referenced) {
  for (auto it = referenced.begin(); it != referenced.end();) {
    it = files_per_table_.count(*it) ? std::next(it) : referenced.erase(it);
  }
  ENGAGE_ASSIGN_OR_RETURN(DuckResult plan, conn_.Query("EXPLAIN (FORMAT json) " + sql));
  std::vector<TableScan> out;
  if (plan.RowCount() == 0 || referenced.empty()) return out;
  Json j = Json::parse(plan.Str(1, 0).value_or("[]"), nullptr, false);
  std::vector<const Json*> scans;
  WalkPlan(j, scans);
  for (const Json* info : scans) {
    TableScan s;
    std::string files = info->value("Scanning Files", "");
    s.file_filter = info->value("File Filters", "");
    int64_t k = -1, n = -1;
    if (std::sscanf(files.c_str(), "%ld/%ld", &k, &n) != 2) k = n = -1;
    int64_t cardinality = -1;
    if (info->contains("Estimated Cardinality") && (*info)["Estimated Cardinality"].is_string()) {
      cardinality =
          std::strtoll((*info)["Estimated Cardinality"].get<std::string>().c_str(), nullptr, 10);
    }
    std::set<std::string> projected;
    if (info->contains("Projections")) {
      const Json& p = (*info)["Projections"];
      if (p.is_string()) projected.insert(p.get<std::string>());
      if (p.is_array()) {
        for (const auto& c : p) {
          if (c.is_string()) projected.insert(c.get<std::string>());
        }
      }
      projected.erase("");  // count(*) reads no column
    }
    // Candidates: referenced tables with the scan's file count (when the plan shows one) whose
    // columns include every projected column. A table whose row count is the scan's estimated
    // cardinality (an unfiltered scan) wins; otherwise the largest candidate is charged, so the
    // estimate stays an upper bound.
    bool exact = false;
    for (const auto& table : referenced) {
      int64_t count = files_per_table_[table];
      if (n >= 0 && count != n) continue;
      const TableSpec& spec = lake_.config().tables.at(table);
      bool has_all = true;
      for (const auto& c : projected) {
        if (c != "dt" && !spec.FindColumn(c)) has_all = false;
      }
      if (!has_all) continue;
      std::string where = s.file_filter.empty() ? "true" : s.file_filter;
      auto est = conn_.Query(fmt::format(
          "SELECT coalesce(sum(files), 0), coalesce(sum(bytes), 0), count(*) FROM __partitions "
          "WHERE table_name = {} AND ({})",
          SqlQuote(table), where));
      if (!est.ok()) continue;
      int64_t files_sel = est->Int(0, 0);
      if (k >= 0 && files_sel != k) continue;
      bool matches_rows = cardinality >= 0 && rows_per_table_[table] == cardinality;
      if (exact && !matches_rows) continue;
      if (!s.table.empty() && !(matches_rows && !exact) && est->Int(1, 0) <= s.estimated_bytes) {
        continue;
      }
      exact = exact || matches_rows;
      s.table = table;
      s.files_total = count;
      s.files_scanned = files_sel;
      s.estimated_bytes = est->Int(1, 0);
      s.partitions_scanned = est->Int(2, 0);
    }
    if (s.table.empty()) continue;  // a Parquet scan not over a lake table
    out.push_back(std::move(s));
  }
  return out;
}

void QueryEngine::Record(const QueryRequest& req, const std::string& status,
                         const std::string& error, const QueryResult* r) {
  lake::QueryRecord q;
  q.at = lake_.NowIso();
  q.sql = req.sql;
  q.status = status;
  q.error = error;
  q.source = req.source;
  if (r) {
    q.bytes_scanned = r->bytes_scanned;
    q.estimated_bytes = r->estimated_bytes;
    q.partitions_scanned = r->partitions_scanned;
    q.rows = r->row_count;
    q.elapsed_ms = r->elapsed_ms;
    q.cost_usd = r->cost_usd;
  }
  Status s = lake_.catalog().RecordQuery(q);
  if (!s.ok()) spdlog::warn("could not record query history: {}", s.ToString());
}

Result<QueryResult> QueryEngine::Run(const QueryRequest& req) {
  const Clock& clock = lake_.clock();
  int64_t t0 = clock.MonotonicMicros();
  auto fail = [&](Status s) -> Status {
    Record(req,
           s.code() == StatusCode::kResourceExhausted ||
                   s.code() == StatusCode::kFailedPrecondition ||
                   s.code() == StatusCode::kPermissionDenied
               ? "refused"
               : "error",
           s.message(), nullptr);
    return s;
  };
  std::string sql = StripTrailing(req.sql);
  if (sql.empty()) return fail(InvalidArgumentError("empty query"));

  // Exactly one statement, and it must read only. DuckDB's parse tree serializer accepts only
  // SELECT statements, and tells which tables the query names; anything else is classified by
  // preparing it (EXPLAIN is allowed, everything else refused).
  duckdb_statement_type type = DUCKDB_STATEMENT_TYPE_SELECT;
  std::set<std::string> referenced;
  {
    auto tree = conn_.Query("SELECT json_serialize_sql(" + SqlQuote(sql) + ")");
    if (!tree.ok()) return fail(ClassifyError(tree.status().message()));
    Json j = Json::parse(tree->Str(0, 0).value_or("{}"), nullptr, false);
    if (j.value("error", false)) {
      if (j.value("error_type", "") == "parser") {
        return fail(InvalidArgumentError("syntax error: " + j.value("error_message", "")));
      }
      Extracted ex;
      idx_t n = duckdb_extract_statements(conn_.raw(), sql.c_str(), ex.out());
      if (n == 0) {
        const char* err = duckdb_extract_statements_error(ex.get());
        return fail(InvalidArgumentError(err ? err : "cannot parse the query"));
      }
      if (n != 1) {
        return fail(InvalidArgumentError(
            fmt::format("expected exactly one SQL statement, got {}", static_cast<int64_t>(n))));
      }
      Prepared check;
      if (duckdb_prepare_extracted_statement(conn_.raw(), ex.get(), 0, check.out()) !=
          DuckDBSuccess) {
        return fail(ClassifyError(duckdb_prepare_error(check.get())));
      }
      type = duckdb_prepared_statement_type(check.get());
      if (type != DUCKDB_STATEMENT_TYPE_EXPLAIN) {
        return fail(PermissionDeniedError(fmt::format(
            "only read-only queries are allowed (SELECT or EXPLAIN); this is a {} statement",
            StatementTypeName(type))));
      }
    } else {
      size_t n =
          j.contains("statements") && j["statements"].is_array() ? j["statements"].size() : 0;
      if (n != 1) {
        return fail(InvalidArgumentError(
            fmt::format("expected exactly one SQL statement, got {}", static_cast<int64_t>(n))));
      }
      CollectTableNames(j, referenced);
    }
  }

  if (req.authorize) {
    std::set<std::string> tables;
    if (type == DUCKDB_STATEMENT_TYPE_SELECT) {
      for (const auto& t : referenced) {
        if (lake_.config().tables.count(t)) tables.insert(t);
      }
    } else {
      tables.insert("*");
    }
    Status allowed = req.authorize(tables);
    if (!allowed.ok()) return fail(allowed);
  }

  QueryResult result;
  result.dry_run = req.dry_run;
  spdlog::debug("query: parsed and checked in {} us", clock.MonotonicMicros() - t0);
  if (type == DUCKDB_STATEMENT_TYPE_SELECT) {
    auto scans = Estimate(sql, referenced);
    spdlog::debug("query: estimated in {} us", clock.MonotonicMicros() - t0);
    if (!scans.ok()) return fail(ClassifyError(scans.status().message()));
    result.scans = std::move(*scans);
  }
  for (const auto& s : result.scans) {
    result.estimated_bytes += s.estimated_bytes;
    result.partitions_scanned += s.partitions_scanned;
    auto spec = lake_.config().Table(s.table);
    if (spec.ok() && (*spec)->require_partition_filter && s.file_filter.empty()) {
      return fail(FailedPreconditionError(fmt::format(
          "table '{}' requires a filter on its partition column dt (e.g. WHERE dt >= DATE "
          "'2024-01-01'); this query would scan all {} partitions",
          s.table, s.partitions_scanned)));
    }
  }
  const Prices& prices = lake_.config().prices;
  result.estimated_cost_usd = CostUsd(prices, result.estimated_bytes);
  int64_t cutoff = req.max_scan_bytes.value_or(lake_.config().query.max_scan_bytes);
  if (cutoff > 0 && result.estimated_bytes > cutoff) {
    return fail(ResourceExhaustedError(fmt::format(
        "query would scan about {} bytes ({} partitions), above the scan cutoff of {} bytes; "
        "filter on dt to read fewer partitions or raise --max-scan-bytes",
        result.estimated_bytes, result.partitions_scanned, cutoff)));
  }
  if (req.dry_run) {
    result.elapsed_ms = static_cast<double>(clock.MonotonicMicros() - t0) / 1000.0;
    Record(req, "dry_run", "", &result);
    return result;
  }

  // Run, limited to max_result_rows + 1 rows so huge results cannot exhaust memory. DuckDB
  // renders each SELECT row as JSON itself (to_json of the row), so every type — timestamps
  // with time zones, decimals, lists, structs — arrives intact; the row's own columns ride along
  // for their names and types (reading them in one statement avoids binding the query twice).
  int64_t max_rows = lake_.config().query.max_result_rows;
  const bool select = type == DUCKDB_STATEMENT_TYPE_SELECT;
  std::string run_sql =
      select
          ? fmt::format("SELECT to_json(__q), __q.* FROM (\n{}\n) __q LIMIT {}", sql, max_rows + 1)
          : sql;
  DuckResult res;
  {
    auto r = MeteredQuery(run_sql, &result.bytes_scanned);
    if (!r.ok()) return fail(ClassifyError(r.status().message()));
    res = std::move(*r);
  }
  spdlog::debug("query: executed in {} us", clock.MonotonicMicros() - t0);
  for (int c = select ? 1 : 0; c < res.ColumnCount(); ++c) {
    result.columns.push_back(res.ColumnName(c));
    result.column_types.push_back(res.ColumnTypeName(c));
  }
  int64_t rows = res.RowCount();
  if (rows > max_rows) {
    result.truncated = true;
    rows = max_rows;
  }
  for (int64_t r = 0; r < rows; ++r) {
    Json row = Json::array();
    if (select) {
      Json obj = Json::parse(QuoteNonFiniteNumbers(res.Str(0, r).value_or("{}")), nullptr, false);
      if (obj.is_object()) {
        for (auto& [k, v] : obj.items()) row.push_back(std::move(v));
      }
    } else {
      for (int c = 0; c < res.ColumnCount(); ++c) {
        auto v = res.Str(c, r);
        row.push_back(v ? Json(*v) : Json(nullptr));
      }
    }
    result.rows.push_back(std::move(row));
  }
  result.row_count = rows;
  result.cost_usd = CostUsd(prices, result.bytes_scanned);
  result.elapsed_ms = static_cast<double>(clock.MonotonicMicros() - t0) / 1000.0;
  Record(req, "ok", "", &result);
  spdlog::debug("query: recorded in {} us", clock.MonotonicMicros() - t0);
  return result;
}

Result<DuckResult> QueryEngine::MeteredQuery(const std::string& sql, int64_t* bytes_scanned) {
  std::lock_guard lock(MeterMutex());
  int64_t probe = 0;
  int64_t before = ProcessReadBytes(&probe);
  auto r = conn_.Query(sql);
  int64_t after = ProcessReadBytes(nullptr);
  *bytes_scanned = std::max<int64_t>(0, after - before - probe);
  return r;
}

Result<DuckResult> QueryEngine::RunTrusted(const std::string& sql, const std::string& source) {
  const Clock& clock = lake_.clock();
  int64_t t0 = clock.MonotonicMicros();
  QueryRequest req;
  req.sql = sql;
  req.source = source;
  QueryResult meter;
  auto r = MeteredQuery(sql, &meter.bytes_scanned);
  if (!r.ok()) {
    Status s = ClassifyError(r.status().message());
    Record(req, "error", s.message(), nullptr);
    return s;
  }
  meter.row_count = r->RowCount();
  meter.cost_usd = CostUsd(lake_.config().prices, meter.bytes_scanned);
  meter.elapsed_ms = static_cast<double>(clock.MonotonicMicros() - t0) / 1000.0;
  Record(req, "ok", "", &meter);
  return r;
}

}  // namespace engage::sql
