#include "engage/lake/ingest.h"

#include <fmt/format.h>
#include <glob.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "engage/core/ids.h"
#include "engage/core/log.h"
#include "engage/lake/duck.h"

namespace engage::lake {
namespace {

// Field separator for reading a text file one whole line per row: a control character that
// cannot appear unescaped in JSON or in the whitespace-separated files this mode is for.
constexpr char kLineDelim[] = "\x1f";

// What one pass over a text source (decompressed) found: its physical lines, its records as a
// CSV reader with quoting sees them, and the lines too long for the reader. Used to account for
// every record: DuckDB silently skips a line longer than its read buffer (a 40 MB value with
// the 2 MB default limit), reporting it neither as a row nor as a reject.
struct TextScan {
  int64_t lines = 0;        // physical lines (a last line without '\n' counts)
  int64_t empty_lines = 0;  // lines with no bytes but a '\r'
  int64_t records = 0;      // records, a quoted field may span lines (CSV with a quote char)
  int64_t empty_records = 0;
  bool saw_quote = false;
  bool quotes_well_formed = true;  // quotes open fields and close before a delimiter or newline
  struct Overlong {
    int64_t line = 0;  // 1-based
    int64_t bytes = 0;
    std::string head;  // the first bytes, for the quarantine record
  };
  std::vector<Overlong> overlong;  // lines longer than max_line_bytes
};

constexpr size_t kScanChunk = 256 * 1024;
constexpr size_t kOverlongHeadBytes = 1024;
constexpr size_t kMaxOverlongListed = 100000;

// Scans `path` (gunzipping a .gz file whole: a damaged or truncated one is an error naming it).
// `quote` is the CSV quote character, 0 for none; `delim` the field delimiter.
Result<TextScan> ScanText(const std::string& path, char quote, char delim, int64_t max_line_bytes) {
  TextScan scan;
  std::string lower = path;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  const bool gz = lower.ends_with(".gz");
  gzFile zf = nullptr;
  std::FILE* f = nullptr;
  if (gz) {
    zf = ::gzopen(path.c_str(), "rb");
    if (zf == nullptr) return NotFoundError(fmt::format("cannot open '{}'", path));
    ::gzbuffer(zf, kScanChunk);
  } else {
    f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return NotFoundError(fmt::format("cannot open '{}'", path));
  }
  Cleanup close_files([&] {
    if (zf != nullptr) ::gzclose_r(zf);
    if (f != nullptr) std::fclose(f);
  });
  std::string buf(kScanChunk, '\0');
  int64_t line_bytes = 0;    // of the current line, without '\r'
  int64_t record_bytes = 0;  // of the current record
  bool in_quotes = false;
  bool field_start = true;
  bool after_close = false;  // the previous byte closed a quoted field
  std::string head;          // of the current line, while it may become overlong
  auto end_line = [&] {
    ++scan.lines;
    if (line_bytes == 0) ++scan.empty_lines;
    if (line_bytes > max_line_bytes && scan.overlong.size() < kMaxOverlongListed) {
      scan.overlong.push_back({scan.lines, line_bytes, head});
    }
    line_bytes = 0;
    head.clear();
  };
  bool first_read = true;
  while (true) {
    int64_t n = 0;
    if (gz) {
      int got = ::gzread(zf, buf.data(), static_cast<unsigned>(buf.size()));
      if (got < 0) {
        int errnum = Z_OK;
        const char* msg = ::gzerror(zf, &errnum);
        return InvalidArgumentError(fmt::format(
            "'{}' is a damaged gzip file ({}): nothing ingested", path, msg ? msg : "error"));
      }
      if (first_read && got > 0 && ::gzdirect(zf)) {
        return InvalidArgumentError(
            fmt::format("'{}' is not a gzip file, though its name ends in .gz", path));
      }
      n = got;
    } else {
      n = static_cast<int64_t>(std::fread(buf.data(), 1, buf.size(), f));
      if (n == 0 && std::ferror(f)) {
        return InvalidArgumentError(fmt::format("cannot read '{}'", path));
      }
    }
    first_read = false;
    if (n == 0) break;
    for (int64_t i = 0; i < n; ++i) {
      char c = buf[static_cast<size_t>(i)];
      if (c == '\n') {
        end_line();
        if (!in_quotes) {
          ++scan.records;
          if (record_bytes == 0) ++scan.empty_records;
          record_bytes = 0;
          field_start = true;
          after_close = false;
        }
        continue;
      }
      if (c != '\r') {
        ++line_bytes;
        ++record_bytes;
        if (head.size() < kOverlongHeadBytes) head.push_back(c);
      }
      if (quote == 0) continue;
      if (in_quotes) {
        if (c == quote) {
          in_quotes = false;
          after_close = true;
        }
        continue;
      }
      if (c == quote) {
        scan.saw_quote = true;
        if (after_close) {
          in_quotes = true;  // "" inside a quoted field
          after_close = false;
        } else if (field_start) {
          in_quotes = true;
          field_start = false;
        } else {
          scan.quotes_well_formed = false;
        }
        continue;
      }
      if (after_close && c != delim && c != '\r') scan.quotes_well_formed = false;
      after_close = false;
      field_start = c == delim;
    }
  }
  if (gz) {
    int errnum = Z_OK;
    const char* msg = ::gzerror(zf, &errnum);
    if (errnum != Z_OK) {
      return InvalidArgumentError(fmt::format("'{}' is a damaged gzip file ({}): nothing ingested",
                                              path, msg ? msg : "error"));
    }
  }
  if (line_bytes > 0 || !head.empty()) end_line();
  if (in_quotes) scan.quotes_well_formed = false;
  if (record_bytes > 0) ++scan.records;
  return scan;
}

struct Source {
  std::string path;  // absolute
  SourceFormat format = SourceFormat::kCsv;
  SourceFile meta;
  // Source column name -> SQL expression reading it from the raw relation.
  std::map<std::string, std::string> columns;
  std::map<std::string, std::string> parquet_types;  // for Parquet sources
  std::vector<std::string> header;                   // source column names in file order
  int64_t first_data_line = 1;                       // 1-based line of the first data row
  std::string raw_relation;                          // table/view with the raw rows
  std::string row_expr;                              // 0-based row index within the file
  std::string structural_check;                      // SQL giving a reason, or NULL
  TextScan scan;                                     // text sources
  int64_t header_lines = 0;                          // lines before the first record
  // The records the reader must account for (rows + rejected + header lines), when the scan can
  // tell (-1 when quoting is malformed and the reader's own recovery decides).
  int64_t expected_records = -1;
};

bool HasGlobChars(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

Result<std::vector<std::string>> ExpandInputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](const std::string& p) -> Status {
    std::error_code ec;
    std::string abs = std::filesystem::absolute(p, ec).lexically_normal().string();
    struct stat st;
    if (::stat(abs.c_str(), &st) != 0) {
      return NotFoundError(fmt::format("input file '{}' does not exist", p));
    }
    if (!S_ISREG(st.st_mode)) {
      return InvalidArgumentError(fmt::format("input '{}' is not a regular file", p));
    }
    if (seen.insert(abs).second) out.push_back(abs);
    return Status::Ok();
  };
  for (const auto& in : inputs) {
    if (!HasGlobChars(in)) {
      ENGAGE_RETURN_IF_ERROR(add(in));
      continue;
    }
    glob_t g{};
    int rc = ::glob(in.c_str(), 0, nullptr, &g);
    Cleanup free_glob([&g] { ::globfree(&g); });
    if (rc == GLOB_NOMATCH) return NotFoundError(fmt::format("no file matches '{}'", in));
    if (rc != 0) return InvalidArgumentError(fmt::format("cannot expand '{}'", in));
    for (size_t i = 0; i < g.gl_pathc; ++i) ENGAGE_RETURN_IF_ERROR(add(g.gl_pathv[i]));
  }
  if (out.empty()) return InvalidArgumentError("no input files given");
  return out;
}

Result<SourceFormat> DetectFormat(const std::string& path, SourceFormat requested) {
  if (requested != SourceFormat::kAuto) return requested;
  std::string p = path;
  std::transform(p.begin(), p.end(), p.begin(), ::tolower);
  if (p.ends_with(".gz")) p.resize(p.size() - 3);
  for (const char* ext : {".csv", ".tsv", ".txt", ".dat"}) {
    if (p.ends_with(ext)) return SourceFormat::kCsv;
  }
  for (const char* ext : {".jsonl", ".ndjson", ".json"}) {
    if (p.ends_with(ext)) return SourceFormat::kJsonl;
  }
  if (p.ends_with(".parquet") || p.ends_with(".pq")) return SourceFormat::kParquet;
  return InvalidArgumentError(fmt::format(
      "cannot tell the format of '{}' from its extension; pass --format csv|jsonl|parquet", path));
}

std::string FormatName(SourceFormat f) {
  switch (f) {
    case SourceFormat::kCsv:
      return "csv";
    case SourceFormat::kJsonl:
      return "jsonl";
    case SourceFormat::kParquet:
      return "parquet";
    default:
      return "auto";
  }
}

// Reads `path` as one VARCHAR column per line (no quoting), recording malformed lines.
std::string LineReader(const std::string& path, int64_t skip, int64_t max_line_bytes,
                       const std::string& rejects) {
  return fmt::format(
      "read_csv({}, columns={{'__line': 'VARCHAR'}}, header=false, auto_detect=false, "
      "delim={}, quote='', escape='', skip={}, max_line_size={}, store_rejects=true, "
      "rejects_table={}, rejects_scan={})",
      SqlQuote(path), SqlQuote(kLineDelim), skip, max_line_bytes, SqlQuote(rejects),
      SqlQuote(rejects + "_scan"));
}

std::vector<std::string> SplitHeader(const std::string& line, const CsvOptions& csv) {
  std::vector<std::string> out;
  std::string cur;
  if (csv.delimiter == "whitespace") {
    std::string tok;
    for (char c : line) {
      if (c == ' ' || c == '\t' || c == '\r') {
        if (!tok.empty()) out.push_back(tok);
        tok.clear();
      } else {
        tok.push_back(c);
      }
    }
    if (!tok.empty()) out.push_back(tok);
    return out;
  }
  char delim = csv.delimiter[0];
  char quote = csv.quote.empty() ? '\0' : csv.quote[0];
  bool in_quotes = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quote && c == quote) {
      if (in_quotes && i + 1 < line.size() && line[i + 1] == quote) {
        cur.push_back(c);
        ++i;
      } else {
        in_quotes = !in_quotes;
      }
    } else if (c == delim && !in_quotes) {
      out.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur.push_back(c);
    }
  }
  out.push_back(cur);
  if (!out.empty() && out[0].starts_with("\xEF\xBB\xBF")) out[0] = out[0].substr(3);
  for (auto& h : out) {
    while (!h.empty() && (h.back() == ' ' || h.back() == '\t')) h.pop_back();
    while (!h.empty() && (h.front() == ' ' || h.front() == '\t')) h.erase(h.begin());
  }
  return out;
}

// First line of a (possibly gzip-compressed) text file, read through DuckDB.
Result<std::optional<std::string>> FirstLine(DuckConn& conn, const std::string& path) {
  auto res = conn.Query(
      fmt::format("SELECT __line FROM read_csv({}, columns={{'__line': 'VARCHAR'}}, header=false, "
                  "auto_detect=false, delim={}, quote='', escape='', ignore_errors=true) LIMIT 1",
                  SqlQuote(path), SqlQuote(kLineDelim)));
  if (!res.ok()) {
    return InvalidArgumentError(fmt::format("cannot read '{}': {}", path, res.status().message()));
  }
  if (res->RowCount() == 0) return std::optional<std::string>();
  return std::optional<std::string>(res->Str(0, 0).value_or(""));
}

// Prepares the raw relation of one source file and its column expressions.
Status PrepareSource(DuckConn& conn, const TableSpec& spec, Source& src, int k) {
  const CsvOptions& csv = spec.csv;
  std::string rejects = fmt::format("__rej_{}", k);
  src.raw_relation = fmt::format("__src_{}", k);
  if (src.format == SourceFormat::kParquet) {
    auto desc =
        conn.Query(fmt::format("DESCRIBE SELECT * FROM read_parquet({})", SqlQuote(src.path)));
    if (!desc.ok()) {
      return InvalidArgumentError(
          fmt::format("cannot read '{}' as Parquet: {}", src.path, desc.status().message()));
    }
    for (int64_t r = 0; r < desc->RowCount(); ++r) {
      std::string name = desc->Str(0, r).value_or("");
      src.header.push_back(name);
      src.parquet_types[name] = desc->Str(1, r).value_or("");
      src.columns[name] = SqlIdent(name);
    }
    ENGAGE_RETURN_IF_ERROR(conn.Exec(
        fmt::format("CREATE TEMP VIEW {} AS SELECT * FROM read_parquet({}, file_row_number=true)",
                    src.raw_relation, SqlQuote(src.path))));
    src.row_expr = "file_row_number";
    return Status::Ok();
  }

  const bool line_mode = src.format == SourceFormat::kJsonl || csv.delimiter == "whitespace";
  {
    char quote = line_mode || csv.quote.empty() ? '\0' : csv.quote[0];
    char delim = line_mode || csv.delimiter.empty() ? '\0' : csv.delimiter[0];
    ENGAGE_ASSIGN_OR_RETURN(src.scan, ScanText(src.path, quote, delim, csv.max_line_bytes));
    src.header_lines = src.format == SourceFormat::kJsonl ? 0 : (csv.header ? 1 : 0);
    if (line_mode) {
      src.expected_records = src.scan.lines;  // the line reader makes a row of an empty line
    } else if (!src.scan.saw_quote) {
      src.expected_records = src.scan.lines - src.scan.empty_lines;  // empty lines are skipped
    } else if (src.scan.quotes_well_formed) {
      src.expected_records = src.scan.records - src.scan.empty_records;
    }
  }
  ENGAGE_ASSIGN_OR_RETURN(auto first, FirstLine(conn, src.path));
  if (!first) {
    return InvalidArgumentError(fmt::format("'{}' has no lines: nothing to ingest", src.path));
  }
  if (src.format == SourceFormat::kJsonl) {
    ENGAGE_RETURN_IF_ERROR(
        conn.Exec(fmt::format("CREATE TEMP TABLE {} AS SELECT __line FROM {}", src.raw_relation,
                              LineReader(src.path, 0, csv.max_line_bytes, rejects))));
    for (const auto& c : spec.columns) {
      src.columns[c.source] =
          fmt::format("json_extract_string(__line, {})", SqlQuote("$.\"" + c.source + "\""));
    }
    src.row_expr = "rowid";
    src.first_data_line = 1;
    src.structural_check =
        "CASE WHEN NOT json_valid(__line) THEN 'line is not valid JSON' "
        "WHEN json_type(__line) <> 'OBJECT' THEN 'line is not a JSON object' END";
    return Status::Ok();
  }

  // CSV (or whitespace-separated) text.
  std::vector<std::string> first_fields = SplitHeader(*first, csv);
  if (csv.header) {
    src.header = first_fields;
  } else {
    for (size_t i = 0; i < first_fields.size(); ++i)
      src.header.push_back(fmt::format("column{}", i));
  }
  std::set<std::string> unique(src.header.begin(), src.header.end());
  if (unique.size() != src.header.size()) {
    return InvalidArgumentError(
        fmt::format("'{}': the header names a column twice: {}", src.path, *first));
  }
  src.first_data_line = csv.header ? 2 : 1;
  if (csv.delimiter == "whitespace") {
    ENGAGE_RETURN_IF_ERROR(conn.Exec(fmt::format(
        "CREATE TEMP TABLE {} AS SELECT __line, regexp_split_to_array(trim(__line), '\\s+') AS "
        "__f FROM {}",
        src.raw_relation, LineReader(src.path, csv.header ? 1 : 0, csv.max_line_bytes, rejects))));
    for (size_t i = 0; i < src.header.size(); ++i) {
      src.columns[src.header[i]] = fmt::format("__f[{}]", i + 1);
    }
    src.structural_check =
        fmt::format("CASE WHEN len(__f) <> {0} THEN 'expected {0} fields, found ' || len(__f) END",
                    src.header.size());
  } else {
    std::string cols;
    for (size_t i = 0; i < src.header.size(); ++i) {
      cols += fmt::format("{}{}: 'VARCHAR'", i ? ", " : "", SqlQuote(src.header[i]));
      src.columns[src.header[i]] = SqlIdent(src.header[i]);
    }
    ENGAGE_RETURN_IF_ERROR(conn.Exec(
        fmt::format("CREATE TEMP TABLE {} AS SELECT * FROM read_csv({}, columns={{{}}}, header={}, "
                    "auto_detect=false, delim={}, quote={}, escape={}, max_line_size={}, "
                    "store_rejects=true, rejects_table={}, rejects_scan={})",
                    src.raw_relation, SqlQuote(src.path), cols, csv.header ? "true" : "false",
                    SqlQuote(csv.delimiter), SqlQuote(csv.quote), SqlQuote(csv.quote),
                    csv.max_line_bytes, SqlQuote(rejects), SqlQuote(rejects + "_scan"))));
  }
  src.row_expr = "rowid";
  return Status::Ok();
}

std::string NumberLiteral(double v) { return fmt::format("{:.17g}::DOUBLE", v); }

// SQL for the typed value of column `c` given its raw expression `raw` (text when `raw_is_text`).
std::string TypedExpr(const ColumnSpec& c, const std::string& raw, bool raw_is_text) {
  std::string type(ColumnTypeSql(c.type));
  bool time = c.type == ColumnType::kTimestamp || c.type == ColumnType::kDate;
  if (time && !c.format.empty()) {
    std::string ts =
        fmt::format("try_strptime(trim(CAST({} AS VARCHAR)), {})", raw, SqlQuote(c.format));
    return c.type == ColumnType::kDate ? fmt::format("CAST({} AS DATE)", ts) : ts;
  }
  if (!raw_is_text) return fmt::format("TRY_CAST({} AS {})", raw, type);
  if (c.type == ColumnType::kTimestamp) {
    // Accepts offsets such as "Z" or "+02:00" (converted to UTC) and naive UTC times.
    return fmt::format("TRY_CAST(TRY_CAST(trim({}) AS TIMESTAMPTZ) AS TIMESTAMP)", raw);
  }
  if (c.type == ColumnType::kString) return raw;
  return fmt::format("TRY_CAST(trim({}) AS {})", raw, type);
}

// SQL giving the reason column `c` is invalid, or NULL.
std::string CheckExpr(const ColumnSpec& c, const std::string& raw, const std::string& v,
                      const TableSpec& spec, const std::string& max_time) {
  std::vector<std::string> whens;
  std::string n = c.name;
  whens.push_back(fmt::format("WHEN {} IS NULL THEN {}", raw,
                              c.required ? SqlQuote(n + ": required value is missing") : "NULL"));
  whens.push_back(
      fmt::format("WHEN {} IS NULL THEN {} || left(CAST({} AS VARCHAR), 80) || {}", v,
                  SqlQuote(n + ": cannot parse '"), raw,
                  SqlQuote(fmt::format("' as {}{}", ColumnTypeName(c.type),
                                       c.format.empty() ? "" : " with format " + c.format))));
  if (c.type == ColumnType::kDouble) {
    whens.push_back(fmt::format("WHEN NOT isfinite({}) THEN {}", v,
                                SqlQuote(n + ": value is not a finite number")));
  }
  if (c.min) {
    whens.push_back(fmt::format("WHEN {} < {} THEN {} || {} || {}", v, NumberLiteral(*c.min),
                                SqlQuote(n + ": value "), v,
                                SqlQuote(fmt::format(" is below the minimum {}", *c.min))));
  }
  if (c.max) {
    whens.push_back(fmt::format("WHEN {} > {} THEN {} || {} || {}", v, NumberLiteral(*c.max),
                                SqlQuote(n + ": value "), v,
                                SqlQuote(fmt::format(" is above the maximum {}", *c.max))));
  }
  if (!c.allowed.empty()) {
    std::string list;
    for (size_t i = 0; i < c.allowed.size(); ++i) list += (i ? ", " : "") + SqlQuote(c.allowed[i]);
    whens.push_back(fmt::format("WHEN {} NOT IN ({}) THEN {} || left({}, 80) || {}", v, list,
                                SqlQuote(n + ": '"), v,
                                SqlQuote(fmt::format("' is not one of the allowed values"))));
  }
  if (c.max_length) {
    whens.push_back(
        fmt::format("WHEN length({}) > {} THEN {}", v, *c.max_length,
                    SqlQuote(fmt::format("{}: longer than {} characters", n, *c.max_length))));
  }
  if (c.name == spec.time_column) {
    whens.push_back(fmt::format(
        "WHEN CAST({0} AS TIMESTAMP) < TIMESTAMP {1} OR CAST({0} AS TIMESTAMP) >= TIMESTAMP {2} "
        "THEN {3} || CAST({0} AS VARCHAR) || {4}",
        v, SqlQuote(spec.min_time), SqlQuote(max_time), SqlQuote(n + ": time "),
        SqlQuote(fmt::format(" is outside the accepted range [{}, {})", spec.min_time, max_time))));
  }
  std::string out = "CASE ";
  for (const auto& w : whens) out += w + " ";
  return out + "END";
}

// Builds the checked relation of one source: typed columns, dt, __row, __reason, __raw.
Result<std::string> CheckedSelect(const TableSpec& spec, const Source& src, int k,
                                  const std::string& max_time, const std::string& today) {
  std::vector<std::string> raw_cols;  // layer 1: raw values
  for (size_t i = 0; i < spec.columns.size(); ++i) {
    const ColumnSpec& c = spec.columns[i];
    std::string raw;
    if (!c.expr.empty()) {
      raw = "(" + c.expr + ")";
    } else {
      auto it = src.columns.find(c.source);
      if (it == src.columns.end()) {
        if (c.required) {
          std::string have;
          for (const auto& h : src.header) have += (have.empty() ? "" : ", ") + h;
          return InvalidArgumentError(fmt::format(
              "'{}' has no column '{}' (needed for required column '{}' of table '{}'); its "
              "columns are: {}",
              src.path, c.source, c.name, spec.name, have));
        }
        raw = "NULL";
      } else if (src.format != SourceFormat::kParquet) {
        // In text files a blank value is a missing one.
        raw = fmt::format("CASE WHEN trim({0}) <> '' THEN {0} END", it->second);
      } else {
        raw = it->second;
      }
    }
    raw_cols.push_back(fmt::format("{} AS __r{}", raw, i));
  }
  bool text = src.format != SourceFormat::kParquet;
  std::string typed, checks, raw_struct;
  for (size_t i = 0; i < spec.columns.size(); ++i) {
    const ColumnSpec& c = spec.columns[i];
    bool raw_text = text && c.expr.empty();
    if (!text && c.expr.empty()) {
      auto it = src.parquet_types.find(c.source);
      raw_text = it != src.parquet_types.end() && it->second == "VARCHAR";
    }
    typed += fmt::format(", {} AS __v{}", TypedExpr(c, fmt::format("__r{}", i), raw_text), i);
    checks += fmt::format(
        ", {}", CheckExpr(c, fmt::format("__r{}", i), fmt::format("__v{}", i), spec, max_time));
    raw_struct += fmt::format("{}{}: __r{}", i ? ", " : "", SqlQuote(c.name), i);
  }
  std::string structural = src.structural_check.empty() ? "NULL" : src.structural_check;
  std::string outputs;
  for (size_t i = 0; i < spec.columns.size(); ++i) {
    outputs += fmt::format("__v{} AS {}, ", i, SqlIdent(spec.columns[i].name));
  }
  std::string dt_expr = fmt::format("DATE {}", SqlQuote(today));
  for (size_t i = 0; i < spec.columns.size(); ++i) {
    if (spec.columns[i].name == spec.time_column) dt_expr = fmt::format("CAST(__v{} AS DATE)", i);
  }
  // A structurally broken row reports only that; field checks would be noise.
  std::string reason = fmt::format("coalesce(__structural, concat_ws('; '{}))", checks);
  std::string raw_select =
      fmt::format("SELECT {} AS __row, {} AS __structural, {} FROM {}", src.row_expr, structural,
                  fmt::join(raw_cols, ", "), src.raw_relation);
  if (src.format == SourceFormat::kJsonl) {
    // Only extract fields from lines that are JSON objects.
    raw_select = fmt::format(
        "SELECT __row, __structural, {} FROM (SELECT {} AS __row, {} AS __structural, "
        "CASE WHEN {} IS NULL THEN __line END AS __line FROM {})",
        fmt::join(raw_cols, ", "), src.row_expr, structural, structural, src.raw_relation);
  }
  return fmt::format(
      "SELECT {k} AS __file, __row, {outputs}{dt} AS dt, {reason} AS __reason, "
      "{{{raw}}} AS __raw FROM (SELECT *{typed} FROM ({raw_select}))",
      fmt::arg("k", k), fmt::arg("outputs", outputs), fmt::arg("dt", dt_expr),
      fmt::arg("reason", reason), fmt::arg("raw", raw_struct), fmt::arg("typed", typed),
      fmt::arg("raw_select", raw_select));
}

// Maps 0-based accepted row indexes (ascending) to 1-based file lines, skipping lines the CSV
// reader rejected. Exact for files without blank lines or multi-line quoted fields.
class LineMapper {
 public:
  LineMapper(int64_t first_data_line, std::vector<int64_t> rejected_lines)
      : first_(first_data_line), rejected_(std::move(rejected_lines)) {}
  int64_t LineOf(int64_t row) {
    int64_t line = first_ + row + static_cast<int64_t>(j_);
    while (j_ < rejected_.size() && rejected_[j_] <= line) {
      ++j_;
      ++line;
    }
    return line;
  }

 private:
  int64_t first_;
  std::vector<int64_t> rejected_;
  size_t j_ = 0;
};

struct QuarantineWriter {
  std::string text;
  int64_t count = 0;
  void Add(const std::string& file, const std::optional<int64_t>& line, int64_t row,
           const std::string& reason, Json record) {
    Json j;
    j["source_file"] = file;
    j["line"] = line ? Json(*line) : Json(nullptr);
    j["row"] = row;
    j["reason"] = reason;
    j["record"] = std::move(record);
    text += DumpJson(j);
    text += '\n';
    ++count;
  }
};

}  // namespace

Result<SourceFormat> ParseSourceFormat(const std::string& s) {
  if (s.empty() || s == "auto") return SourceFormat::kAuto;
  if (s == "csv") return SourceFormat::kCsv;
  if (s == "jsonl" || s == "json" || s == "ndjson") return SourceFormat::kJsonl;
  if (s == "parquet") return SourceFormat::kParquet;
  return InvalidArgumentError(
      fmt::format("unknown format '{}' (expected auto, csv, jsonl or parquet)", s));
}

Json IngestReport::ToJson() const {
  Json j = record.ToJson();
  j["no_op"] = no_op;
  Json sk = Json::array();
  for (const auto& s : skipped) {
    sk.push_back({{"path", s.path}, {"previous_ingest_id", s.previous_ingest_id}});
  }
  j["skipped_sources"] = sk;
  j["quarantine_file"] = quarantine_file.empty() ? Json(nullptr) : Json(quarantine_file);
  return j;
}

Result<IngestReport> Ingest(Lake& lake, const IngestRequest& req,
                            const std::function<void(const std::string&)>& stage) {
  auto say = [&](const std::string& s) {
    spdlog::debug("ingest: {}", s);
    if (stage) stage(s);
  };
  const int64_t start_us = lake.clock().MonotonicMicros();
  ENGAGE_ASSIGN_OR_RETURN(const TableSpec* spec, lake.config().Table(req.table));
  std::string id = req.ingest_id.empty() ? NewId(lake.clock()) : req.ingest_id;
  if (!IsSafeId(id)) {
    return InvalidArgumentError(
        fmt::format("ingest id '{}' must be 1-64 characters of [A-Za-z0-9_.-]", id));
  }
  ENGAGE_ASSIGN_OR_RETURN(auto paths, ExpandInputs(req.inputs));

  IngestReport report;
  report.record.id = id;
  report.record.table = spec->name;
  report.record.started_at = lake.NowIso();

  // 1. Hash; skip content already ingested into this table.
  say(fmt::format("hashing {} file(s)", paths.size()));
  std::vector<Source> sources;
  std::set<std::string> batch_hashes;
  for (const auto& p : paths) {
    ENGAGE_ASSIGN_OR_RETURN(std::string sha, Sha256File(p));
    ENGAGE_ASSIGN_OR_RETURN(int64_t size, lake.fs().FileSize(p));
    ENGAGE_ASSIGN_OR_RETURN(auto prev, lake.catalog().FindSource(spec->name, sha));
    if (prev) {
      report.skipped.push_back({p, *prev});
      continue;
    }
    if (!batch_hashes.insert(sha).second) {
      report.skipped.push_back({p, id});  // same content twice in one call
      continue;
    }
    if (size == 0) return InvalidArgumentError(fmt::format("'{}' is empty: nothing to ingest", p));
    Source s;
    s.path = p;
    ENGAGE_ASSIGN_OR_RETURN(s.format, DetectFormat(p, req.format));
    s.meta = {p, sha, size, 0, 0};
    sources.push_back(std::move(s));
  }
  ENGAGE_ASSIGN_OR_RETURN(auto existing, lake.catalog().FindIngest(id));
  if (existing) {
    if (sources.empty()) {
      report.record = *existing;
      report.no_op = true;
      return report;
    }
    return AlreadyExistsError(fmt::format(
        "ingest id '{}' was already used (table '{}') for different content", id, existing->table));
  }
  if (sources.empty()) {
    report.no_op = true;
    report.record.finished_at = lake.NowIso();
    return report;
  }

  // 2. Read, map and check every source.
  const HomePaths& home = lake.home();
  std::string staging = home.staging() + "/" + id;
  ENGAGE_RETURN_IF_ERROR(lake.fs().RemoveAll(staging));
  ENGAGE_RETURN_IF_ERROR(lake.fs().CreateDirs(staging));
  Cleanup remove_staging([&] { (void)lake.fs().RemoveAll(staging); });

  ENGAGE_ASSIGN_OR_RETURN(DuckDb db, DuckDb::Open({.temp_directory = home.tmp()}));
  ENGAGE_ASSIGN_OR_RETURN(DuckConn conn, db.Connect());
  ENGAGE_RETURN_IF_ERROR(conn.Exec("SET TimeZone='UTC'"));
  std::string max_time =
      FormatIsoUtc(lake.clock().NowMicros() + int64_t{spec->max_future_days} * 86400 * 1000000);
  max_time = max_time.substr(0, 10) + " " + max_time.substr(11, 8);
  const std::string today = FormatIsoUtc(lake.clock().NowMicros()).substr(0, 10);

  std::vector<std::string> checked;
  for (size_t k = 0; k < sources.size(); ++k) {
    Source& src = sources[k];
    say(fmt::format("reading {} ({})", src.path, FormatName(src.format)));
    Status s = PrepareSource(conn, *spec, src, static_cast<int>(k));
    if (!s.ok()) {
      if (s.code() == StatusCode::kInvalidArgument &&
          s.message().find(src.path) == std::string::npos) {
        return InvalidArgumentError(fmt::format("cannot parse '{}' as {}: {}", src.path,
                                                FormatName(src.format), s.message()));
      }
      return s;
    }
    ENGAGE_ASSIGN_OR_RETURN(std::string sel,
                            CheckedSelect(*spec, src, static_cast<int>(k), max_time, today));
    std::string view = fmt::format("__chk_{}", k);
    Status vs = conn.Exec(fmt::format("CREATE TEMP VIEW {} AS {}", view, sel));
    if (!vs.ok()) {
      return InvalidArgumentError(fmt::format("'{}': cannot map columns for table '{}': {}",
                                              src.path, spec->name, vs.message()));
    }
    checked.push_back(view);
  }
  std::string all =
      fmt::format("SELECT * FROM {}", fmt::join(checked, " UNION ALL SELECT * FROM "));

  // 3. Quarantine: rows failing checks, then rows the reader could not parse.
  say("collecting rejected rows");
  QuarantineWriter quarantine;
  {
    // One validation pass keeps only the failing rows; the write below skips them by key.
    ENGAGE_RETURN_IF_ERROR(conn.Exec(fmt::format(
        "CREATE TEMP TABLE __bad AS SELECT __file, __row, __reason, to_json(__raw) AS __raw FROM "
        "({}) WHERE __reason <> ''",
        all)));
    // Primary key: among rows that passed, later duplicates within the batch and keys already
    // in the lake join the bad rows. Only key and position columns are scanned.
    if (!spec->primary_key.empty()) {
      say("checking primary key");
      std::vector<std::string> pk;
      for (const auto& c : spec->primary_key) pk.push_back(SqlIdent(c));
      std::string pk_list = fmt::format("{}", fmt::join(pk, ", "));
      ENGAGE_ASSIGN_OR_RETURN(auto lake_files, lake.catalog().Files(spec->name));
      std::string in_lake = "false";
      std::string join;
      if (!lake_files.empty()) {
        std::vector<std::string> abs;
        for (const auto& f : lake_files) abs.push_back(lake.AbsPath(f.path));
        join = fmt::format(
            " LEFT JOIN (SELECT DISTINCT {pk}, true AS __hit FROM read_parquet({files})) __e "
            "USING ({pk})",
            fmt::arg("pk", pk_list), fmt::arg("files", SqlList(abs)));
        in_lake = "__e.__hit IS NOT NULL";
      }
      std::string key_text = "concat_ws(', '";
      for (const auto& c : spec->primary_key) key_text += ", CAST(" + SqlIdent(c) + " AS VARCHAR)";
      key_text += ")";
      ENGAGE_RETURN_IF_ERROR(conn.Exec(fmt::format(
          "INSERT INTO __bad SELECT __file, __row, CASE WHEN __exists THEN 'primary key (' || "
          "{key} || ') already exists in the lake' ELSE 'duplicate primary key (' || {key} || "
          "') within this ingest' END, to_json(__raw) FROM (SELECT __a.*, {in_lake} AS __exists "
          "FROM (SELECT * FROM ({all}) __k ANTI JOIN __bad USING (__file, __row)) __a{join}) "
          "QUALIFY __exists OR row_number() OVER (PARTITION BY {pk} ORDER BY __file, __row) > 1",
          fmt::arg("key", key_text), fmt::arg("in_lake", in_lake), fmt::arg("all", all),
          fmt::arg("join", join), fmt::arg("pk", pk_list))));
    }
    ENGAGE_ASSIGN_OR_RETURN(
        auto bad, conn.Query("SELECT __file, __row, __reason, __raw FROM __bad ORDER BY __file, "
                             "__row"));
    std::map<int, std::unique_ptr<LineMapper>> mappers;
    // Lines too long for the reader that it neither read nor rejected, per source.
    std::map<int, std::vector<const TextScan::Overlong*>> lost;
    for (size_t k = 0; k < sources.size(); ++k) {
      if (sources[k].format == SourceFormat::kParquet) continue;
      std::vector<int64_t> lines;
      auto rej = conn.Query(fmt::format("SELECT DISTINCT line FROM __rej_{} ORDER BY line", k));
      if (rej.ok()) {
        for (int64_t r = 0; r < rej->RowCount(); ++r) {
          lines.push_back(rej->Int(0, r));  // DuckDB counts every line of the file
        }
      }
      std::set<int64_t> reported(lines.begin(), lines.end());
      for (const auto& o : sources[k].scan.overlong) {
        // Clearly over the limit (a margin for how the reader counts line ends): never a row.
        if (o.bytes > spec->csv.max_line_bytes + 2 && !reported.count(o.line)) {
          lost[static_cast<int>(k)].push_back(&o);
          lines.push_back(o.line);
        }
      }
      std::sort(lines.begin(), lines.end());
      mappers[static_cast<int>(k)] =
          std::make_unique<LineMapper>(sources[k].first_data_line, std::move(lines));
    }
    for (int64_t r = 0; r < bad.RowCount(); ++r) {
      int k = static_cast<int>(bad.Int(0, r));
      int64_t row = bad.Int(1, r);
      std::optional<int64_t> line;
      if (mappers.count(k)) line = mappers[k]->LineOf(row);
      Json rec = Json::parse(bad.Str(3, r).value_or("{}"), nullptr, false);
      quarantine.Add(sources[k].path, line, row + 1, bad.Str(2, r).value_or(""), std::move(rec));
      ++sources[k].meta.rows_rejected;
    }
    for (size_t k = 0; k < sources.size(); ++k) {
      if (sources[k].format == SourceFormat::kParquet) continue;
      auto rej = conn.Query(fmt::format(
          "SELECT line, string_agg(DISTINCT error_message, '; '), first(csv_line) FROM __rej_{} "
          "GROUP BY line ORDER BY line",
          k));
      if (!rej.ok()) continue;  // no rejects table: the reader rejected nothing
      for (int64_t r = 0; r < rej->RowCount(); ++r) {
        int64_t line = rej->Int(0, r);
        std::string msg = rej->Str(1, r).value_or("");
        if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
        std::string raw = rej->Str(2, r).value_or("");
        if (raw.size() > 1024) raw = raw.substr(0, 1024) + "...";
        quarantine.Add(sources[k].path, line, 0, "unparseable line: " + msg,
                       Json{{"raw_line", raw}});
        ++sources[k].meta.rows_rejected;
        ++sources[k].meta.rows_read;
      }
    }
    for (const auto& [k, lines] : lost) {
      for (const TextScan::Overlong* o : lines) {
        quarantine.Add(sources[k].path, o->line, 0,
                       fmt::format("unparseable line: the line is {} bytes, over the limit of {} "
                                   "(max_line_bytes)",
                                   o->bytes, spec->csv.max_line_bytes),
                       Json{{"raw_line", o->head + "..."}});
        ++sources[k].meta.rows_rejected;
        ++sources[k].meta.rows_read;
      }
    }
    for (size_t k = 0; k < sources.size(); ++k) {
      Source& src = sources[k];
      ENGAGE_ASSIGN_OR_RETURN(auto n,
                              conn.Query(fmt::format("SELECT count(*) FROM {}", src.raw_relation)));
      src.meta.rows_read += n.Int(0, 0);
      // Every record of the file is now a row read or a rejected line; if the reader lost some
      // (or made rows of nothing), nothing is published.
      if (src.expected_records >= 0 &&
          src.header_lines + src.meta.rows_read != src.expected_records) {
        return DataLossError(fmt::format(
            "'{}': {} record(s) in the file (after {} header line(s)) but the reader accounted "
            "for {} (rows and rejected lines): nothing ingested",
            src.path, src.expected_records - src.header_lines, src.header_lines,
            src.meta.rows_read));
      }
    }
  }
  const bool any_bad = quarantine.count > 0;

  // 4. Good rows to staging, partitioned by dt.
  say("writing partitions");
  std::string cols;
  for (const auto& c : spec->columns) cols += SqlIdent(c.name) + ", ";
  // One file per partition: let the writer keep every partition open.
  ENGAGE_RETURN_IF_ERROR(conn.Exec("SET partitioned_write_max_open_files = 100000"));
  std::string good = any_bad ? fmt::format(
                                   "SELECT {}dt FROM ({}) __g ANTI JOIN __bad USING "
                                   "(__file, __row)",
                                   cols, all)
                             : fmt::format("SELECT {}dt FROM ({})", cols, all);
  ENGAGE_RETURN_IF_ERROR(conn.Exec(
      fmt::format("COPY ({good}) TO {dir} (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (dt), "
                  "FILENAME_PATTERN {pattern}, OVERWRITE_OR_IGNORE true)",
                  fmt::arg("good", good), fmt::arg("dir", SqlQuote(staging)),
                  fmt::arg("pattern", SqlQuote("part-" + id + "-{i}")))));

  // 5. Move files into the lake, then publish them with the manifest in one transaction.
  std::vector<LakeFile> files;
  std::map<std::string, int64_t> rows_by_file;
  {
    auto meta = conn.Query(fmt::format("SELECT file_name, num_rows FROM parquet_file_metadata({})",
                                       SqlQuote(staging + "/*/*.parquet")));
    if (meta.ok()) {
      for (int64_t r = 0; r < meta->RowCount(); ++r) {
        rows_by_file[meta->Str(0, r).value_or("")] = meta->Int(1, r);
      }
    }
  }
  ENGAGE_ASSIGN_OR_RETURN(auto part_dirs, lake.fs().ListDir(staging));
  std::vector<std::pair<std::string, std::string>> moves;
  for (const auto& pd : part_dirs) {
    if (!pd.starts_with("dt=")) continue;
    std::string dt = pd.substr(3);
    ENGAGE_ASSIGN_OR_RETURN(auto names, lake.fs().ListDir(staging + "/" + pd));
    for (const auto& name : names) {
      std::string from = staging + "/" + pd + "/" + name;
      auto rows = rows_by_file.find(from);
      if (rows == rows_by_file.end()) {
        return InternalError(fmt::format("staged file '{}' has no Parquet metadata", from));
      }
      LakeFile f;
      f.table = spec->name;
      f.dt = dt;
      f.path = spec->name + "/" + pd + "/" + name;
      f.ingest_id = id;
      f.rows = rows->second;
      ENGAGE_ASSIGN_OR_RETURN(f.bytes, lake.fs().FileSize(from));
      files.push_back(f);
      moves.emplace_back(from, lake.AbsPath(f.path));
    }
  }
  say(fmt::format("publishing {} file(s)", files.size()));
  std::set<std::string> dirs;
  for (const auto& [from, to] : moves) {
    std::string dir = std::filesystem::path(to).parent_path().string();
    if (dirs.insert(dir).second) ENGAGE_RETURN_IF_ERROR(lake.fs().CreateDirs(dir));
    ENGAGE_RETURN_IF_ERROR(lake.fs().Rename(from, to));
  }
  for (const auto& d : dirs) ENGAGE_RETURN_IF_ERROR(lake.fs().SyncDir(d));

  if (quarantine.count > 0) {
    std::string qdir = home.quarantine() + "/" + spec->name;
    ENGAGE_RETURN_IF_ERROR(lake.fs().CreateDirs(qdir));
    report.quarantine_file = qdir + "/" + id + ".jsonl";
    ENGAGE_RETURN_IF_ERROR(lake.fs().WriteFileAtomic(report.quarantine_file, quarantine.text));
    report.record.quarantine_path = "_quarantine/" + spec->name + "/" + id + ".jsonl";
  }

  IngestRecord& rec = report.record;
  std::set<std::string> partitions;
  for (const auto& f : files) {
    rec.rows_accepted += f.rows;
    rec.bytes_written += f.bytes;
    partitions.insert(f.dt);
  }
  rec.partitions.assign(partitions.begin(), partitions.end());
  rec.files_written = static_cast<int64_t>(files.size());
  for (const auto& s : sources) {
    rec.rows_read += s.meta.rows_read;
    rec.rows_rejected += s.meta.rows_rejected;
    rec.sources.push_back(s.meta);
  }
  rec.finished_at = lake.NowIso();
  rec.duration_ms = static_cast<double>(lake.clock().MonotonicMicros() - start_us) / 1000.0;
  if (rec.rows_read != rec.rows_accepted + rec.rows_rejected) {
    return InternalError(fmt::format(
        "ingest '{}' lost track of rows: read {}, accepted {}, rejected {}; nothing published", id,
        rec.rows_read, rec.rows_accepted, rec.rows_rejected));
  }
  Status commit = lake.catalog().CommitIngest(rec, files);
  if (!commit.ok()) {
    for (const auto& [from, to] : moves) (void)lake.fs().RemoveAll(to);
    if (!report.quarantine_file.empty()) (void)lake.fs().RemoveAll(report.quarantine_file);
    return commit;
  }
  return report;
}

}  // namespace engage::lake
