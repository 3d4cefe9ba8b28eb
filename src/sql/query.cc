#include "engage/sql/query.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "engage/core/log.h"
#include "engage/core/text.h"
#include "engage/sql/functions.h"

namespace engage::sql {

std::vector<DerivedView> DerivedViews(const Config& config) {
  std::vector<DerivedView> out;
  auto predictions = config.tables.find("predictions");
  const ColumnSpec* id =
      predictions == config.tables.end() ? nullptr : predictions->second.FindColumn("customer_id");
  if (id != nullptr) {
    std::string type(ColumnTypeSql(id->type));
    out.push_back(
        {"predictions_latest", "predictions",
         fmt::format("SELECT * EXCLUDE (__latest) FROM (SELECT * REPLACE (CAST(customer_id AS "
                     "{0}) AS customer_id), row_number() OVER (PARTITION BY model, "
                     "CAST(customer_id AS {0}) ORDER BY scored_at DESC, model_version DESC, "
                     "cutoff DESC) AS __latest FROM predictions) WHERE __latest = 1",
                     type)});
  }
  return out;
}

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
  if (msg.find("Out of Memory Error") != std::string::npos) {
    return ResourceExhaustedError("the query needs more memory than [query] memory_limit allows (" +
                                  msg.substr(0, msg.find('\n')) + ")");
  }
  if (msg.find("disabled by configuration") != std::string::npos ||
      msg.find("Permission Error") != std::string::npos ||
      msg.find("not allowed") != std::string::npos) {
    return PermissionDeniedError(
        "only the lake's tables can be read; file access and configuration changes are not "
        "allowed (" +
        msg.substr(0, msg.find('\n')) + ")");
  }
  // DuckDB's error text ends with the line of the statement it failed on, which is Engage's
  // wrapper around the user's query, not what the user wrote.
  size_t context = msg.find("\n\nLINE ");
  return InvalidArgumentError(context == std::string::npos ? msg : msg.substr(0, context));
}

// Calls `visit` on every object in `root` (depth-first, without recursion: DuckDB's trees are
// as deep as the query); a non-OK status stops the walk and is returned.
template <typename Visit>
Status ForEachObject(const Json& root, Visit visit) {
  std::vector<const Json*> stack{&root};
  while (!stack.empty()) {
    const Json* n = stack.back();
    stack.pop_back();
    if (n->is_object()) ENGAGE_RETURN_IF_ERROR(visit(*n));
    if (!n->is_structured()) continue;
    for (const auto& c : *n) {
      if (c.is_structured()) stack.push_back(&c);
    }
  }
  return Status::Ok();
}

// Every LOGICAL_GET node (a scan: of files, of a table function, of a catalog table) anywhere in
// a serialized logical plan (json_serialize_plan).
std::vector<const Json*> PlanScans(const Json& plan) {
  std::vector<const Json*> out;
  Status walked = ForEachObject(plan, [&out](const Json& n) {
    auto type = n.find("type");
    if (type != n.end() && type->is_string() && *type == "LOGICAL_GET") out.push_back(&n);
    return Status::Ok();
  });
  (void)walked;  // the visitor never fails
  return out;
}

// Logical operators that compute only from their children: a plan made of these and scans reads
// nothing but its scans' files. Others (an expression or dummy scan holding a count(*) DuckDB
// took from a file's metadata while planning, an empty result, a new operator) may stand for
// files the plan does not list.
bool ComputesFromItsInputs(std::string_view type) {
  static constexpr std::string_view kPure[] = {"LOGICAL_PROJECTION",
                                               "LOGICAL_FILTER",
                                               "LOGICAL_AGGREGATE_AND_GROUP_BY",
                                               "LOGICAL_WINDOW",
                                               "LOGICAL_UNNEST",
                                               "LOGICAL_LIMIT",
                                               "LOGICAL_ORDER_BY",
                                               "LOGICAL_TOP_N",
                                               "LOGICAL_DISTINCT",
                                               "LOGICAL_GET",
                                               "LOGICAL_COMPARISON_JOIN",
                                               "LOGICAL_ANY_JOIN",
                                               "LOGICAL_CROSS_PRODUCT",
                                               "LOGICAL_DELIM_JOIN",
                                               "LOGICAL_DELIM_GET",
                                               "LOGICAL_ASOF_JOIN",
                                               "LOGICAL_POSITIONAL_JOIN",
                                               "LOGICAL_UNION",
                                               "LOGICAL_EXCEPT",
                                               "LOGICAL_INTERSECT",
                                               "LOGICAL_CTE_REF",
                                               "LOGICAL_MATERIALIZED_CTE",
                                               "LOGICAL_RECURSIVE_CTE",
                                               "LOGICAL_SAMPLE",
                                               "LOGICAL_PIVOT"};
  return std::find(std::begin(kPure), std::end(kPure), type) != std::end(kPure);
}

// Table functions a query may call besides scans of lake files: pure generators that read
// nothing. Everything else (read_text, read_csv, glob, parquet_metadata, duckdb_settings(), a
// scan of an internal table...) is refused.
bool IsAllowedGenerator(std::string_view name) {
  static constexpr std::string_view kAllowed[] = {"range", "generate_series", "unnest", "json_each",
                                                  "json_tree"};
  return std::find(std::begin(kAllowed), std::end(kAllowed), name) != std::end(kAllowed);
}

// Where DuckDB spills large sorts, joins and aggregates: inside the home, apart from the rest of
// tmp/ (which queries may not read).
std::string SpillDir(const lake::Lake& lake) { return lake.home().tmp() + "/duckdb"; }

// A string member of a JSON object; empty when absent or of another type (DuckDB's serialized
// trees use the same key names at different levels with different types).
std::string StrField(const Json& n, const char* key) {
  auto it = n.find(key);
  return it != n.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Status NotAllowedError(const std::string& what) {
  return PermissionDeniedError(fmt::format(
      "'{}' is not allowed in queries: only the lake's tables can be read, by name (engage tables "
      "lists them)",
      what));
}

bool IsPlainName(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// Levenshtein distance of two short names, case-insensitive.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                  std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (same ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The lake table a query reads through relation `name` (any case): the table itself, or the
// table a derived view reads; empty when it is neither.
std::string LakeRelationTable(const Config& config, const std::string& name) {
  for (const auto& [t, spec] : config.tables) {
    if (strcasecmp(t.c_str(), name.c_str()) == 0) return t;
  }
  for (const auto& v : DerivedViews(config)) {
    if (strcasecmp(v.name.c_str(), name.c_str()) == 0) return v.table;
  }
  return "";
}

// A table the query names that the lake does not have: kNotFound naming it and the lake's
// tables, with the closest one as a suggestion (never DuckDB's, which offers its own catalogs).
Status UnknownTableError(const std::string& name, const Config& config) {
  std::vector<std::string> tables;
  std::string closest;
  size_t best = std::max<size_t>(2, name.size() / 3) + 1;
  std::vector<std::string> known;
  for (const auto& [t, spec] : config.tables) known.push_back(t);
  for (const auto& v : DerivedViews(config)) known.push_back(v.name);
  for (const auto& t : known) {
    tables.push_back(t);
    size_t d = EditDistance(name, t);
    if (d < best) {
      best = d;
      closest = t;
    }
  }
  std::string list = tables.empty() ? "none" : fmt::format("{}", fmt::join(tables, ", "));
  return NotFoundError(fmt::format(
      "no table named '{}'{}; the lake's tables are: {} (engage tables describes them)", name,
      closest.empty() ? "" : fmt::format(" (did you mean '{}'?)", closest), list));
}

// Index of the first character of `sql` at or after `i` that is not whitespace or in a comment;
// npos for an unterminated block comment.
size_t SkipBlank(std::string_view sql, size_t i) {
  for (;;) {
    while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i]))) ++i;
    if (sql.substr(i, 2) == "--") {
      size_t e = sql.find('\n', i);
      i = e == std::string_view::npos ? sql.size() : e + 1;
    } else if (sql.substr(i, 2) == "/*") {
      size_t e = sql.find("*/", i + 2);
      if (e == std::string_view::npos) return std::string_view::npos;
      i = e + 2;
    } else {
      return i;
    }
  }
}

// The first keyword of a statement, upper case ("" if it starts otherwise), past comments and
// opening parentheses.
std::string LeadingKeyword(std::string_view sql) {
  size_t i = SkipBlank(sql, 0);
  while (i != std::string_view::npos && i < sql.size() && sql[i] == '(') i = SkipBlank(sql, i + 1);
  std::string word;
  while (i != std::string_view::npos && i < sql.size() &&
         (std::isalpha(static_cast<unsigned char>(sql[i])) || sql[i] == '_')) {
    word.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(sql[i++]))));
  }
  return word;
}

// Statements starting with these read (or are refused for another reason than writing).
bool IsReadKeyword(std::string_view kw) {
  static constexpr std::string_view kRead[] = {"SELECT",  "WITH",     "FROM", "VALUES", "TABLE",
                                               "EXPLAIN", "DESCRIBE", "DESC", "SHOW",   "SUMMARIZE",
                                               "PIVOT",   "UNPIVOT",  ""};
  return std::find(std::begin(kRead), std::end(kRead), kw) != std::end(kRead);
}

// "a DELETE statement", "an INSERT statement", or "not a SELECT statement" (WITH ... DELETE).
std::string StatementKind(std::string_view sql) {
  static constexpr std::string_view kKinds[] = {
      "DELETE",  "INSERT",  "UPDATE",  "MERGE",      "TRUNCATE",   "UPSERT",
      "REPLACE", "CREATE",  "DROP",    "ALTER",      "COPY",       "ATTACH",
      "DETACH",  "INSTALL", "LOAD",    "PRAGMA",     "SET",        "RESET",
      "CALL",    "EXPORT",  "IMPORT",  "VACUUM",     "CHECKPOINT", "FORCE",
      "BEGIN",   "START",   "COMMIT",  "ROLLBACK",   "ABORT",      "END",
      "USE",     "PREPARE", "EXECUTE", "DEALLOCATE", "ANALYZE",    "COMMENT"};
  std::string kw = LeadingKeyword(sql);
  if (std::find(std::begin(kKinds), std::end(kKinds), kw) == std::end(kKinds)) {
    return "not a SELECT statement";
  }
  bool vowel = std::string_view("AEIOU").find(kw[0]) != std::string_view::npos;
  return fmt::format("{} {} statement", vowel ? "an" : "a", kw);
}

// `sql` cut at the semicolons that end statements (outside strings, quoted names, dollar quotes
// and comments), without empty pieces. Only names statements in messages: DuckDB's parser
// decides what runs.
std::vector<std::string_view> SplitStatements(std::string_view sql) {
  std::vector<std::string_view> out;
  size_t start = 0;
  auto add = [&](size_t end) {
    std::string_view piece = sql.substr(start, end - start);
    size_t first = SkipBlank(piece, 0);
    if (first != std::string_view::npos && first < piece.size()) out.push_back(piece);
  };
  for (size_t i = 0; i < sql.size(); ++i) {
    char c = sql[i];
    if (c == '\'' || c == '"') {
      for (++i; i < sql.size(); ++i) {
        if (sql[i] == c) {
          if (i + 1 < sql.size() && sql[i + 1] == c) {
            ++i;
          } else {
            break;
          }
        }
      }
    } else if (c == '-' && sql.substr(i, 2) == "--") {
      size_t e = sql.find('\n', i);
      i = e == std::string_view::npos ? sql.size() : e;
    } else if (c == '/' && sql.substr(i, 2) == "/*") {
      size_t e = sql.find("*/", i + 2);
      i = e == std::string_view::npos ? sql.size() : e + 1;
    } else if (c == '$') {
      size_t tag_end = sql.find('$', i + 1);
      if (tag_end == std::string_view::npos) continue;
      std::string_view tag = sql.substr(i, tag_end - i + 1);
      if (!std::all_of(tag.begin() + 1, tag.end() - 1, [](char t) {
            return std::isalnum(static_cast<unsigned char>(t)) || t == '_';
          })) {
        continue;
      }
      size_t close = sql.find(tag, tag_end + 1);
      i = close == std::string_view::npos ? sql.size() : close + tag.size() - 1;
    } else if (c == ';') {
      add(i);
      start = i + 1;
    }
  }
  add(sql.size());
  return out;
}

// Refuses, before DuckDB binds the query (binding already opens files: a CSV sniffer's error can
// quote a line), every table function but the allowed ones, file paths used as tables
// (replacement scans: FROM 'x.csv'), and query_table() of anything but a lake table's name.
// Adds to `referenced` the name of every base table the tree refers to, and sets `*reads_tables`
// if it refers to a table or calls a function reading one.
Status CheckParseTree(const Json& tree, const Config& config, std::set<std::string>* referenced,
                      bool* reads_tables) {
  return ForEachObject(tree, [&config, referenced, reads_tables](const Json& n) -> Status {
    std::string type = StrField(n, "type");
    if (type == "BASE_TABLE") {
      std::string name = StrField(n, "table_name");
      // "lake.events": DuckDB would say there is no 'events'; the qualifier is what is wrong.
      std::string schema = StrField(n, "schema_name"), catalog = StrField(n, "catalog_name");
      if ((!catalog.empty() || (!schema.empty() && strcasecmp(schema.c_str(), "main") != 0)) &&
          !LakeRelationTable(config, name).empty()) {
        return NotFoundError(fmt::format(
            "no table named '{}{}{}': the lake's tables are named without a schema or catalog: "
            "write {}",
            catalog.empty() ? "" : catalog + ".", schema.empty() ? "" : schema + ".", name, name));
      }
      if (!IsPlainName(name)) {
        if (name.find_first_of("/\\.:*?~") == std::string::npos && !name.empty()) {
          return UnknownTableError(name, config);  // "my-table": a name, not a file
        }
        return PermissionDeniedError(fmt::format(
            "'{}' is not a table: only the lake's tables can be read, by name (engage tables lists "
            "them)",
            name));
      }
      referenced->insert(name);
      *reads_tables = true;
    } else if (type == "FUNCTION" && StrField(n, "class") == "FUNCTION") {
      // The engine's settings (allowed_directories, temp_directory) hold the home's paths.
      std::string fn = StrField(n, "function_name");
      for (auto& ch : fn) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (fn == "current_setting" || fn == "getvariable") {
        return PermissionDeniedError(fmt::format(
            "'{}' is not allowed in queries: the engine's settings are not the lake's data", fn));
      }
    } else if (type == "TABLE_FUNCTION") {
      const Json* f = n.contains("function") ? &n["function"] : nullptr;
      std::string name = f != nullptr && f->is_object() ? StrField(*f, "function_name") : "";
      for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      bool allowed = name == "read_parquet" || name == "parquet_scan" || IsAllowedGenerator(name);
      if (allowed && name != "read_parquet" && name != "parquet_scan") return Status::Ok();
      *reads_tables = true;  // read_parquet, parquet_scan or query_table
      if (allowed && f->contains("children")) {
        // Only literal arguments: a computed path (CASE WHEN now() ..., a concatenation) is
        // evaluated again when the query runs, and could then name other files than the ones
        // the plan resolved and the caller was authorized for.
        Status literal = ForEachObject((*f)["children"], [](const Json& a) -> Status {
          std::string cls = StrField(a, "class");
          std::string fn = StrField(a, "function_name");
          bool ok =
              cls.empty() || cls == "CONSTANT" || cls == "CAST" || cls == "COLUMN_REF" ||
              (cls == "COMPARISON" && StrField(a, "type") == "COMPARE_EQUAL") ||
              (cls == "FUNCTION" && (fn == "list_value" || fn == "struct_pack" || fn == "row"));
          if (ok) return Status::Ok();
          return PermissionDeniedError(
              "read_parquet takes only literal arguments here (a path or a list of paths, and "
              "options): a computed path could name other files when the query runs than when "
              "it was checked");
        });
        if (!literal.ok()) return literal;
      }
      if (name == "query_table") {
        // Only query_table('<lake table>'): a string constant naming a configured table.
        const Json* args = f->contains("children") ? &(*f)["children"] : nullptr;
        if (args != nullptr && args->is_array() && args->size() == 1) {
          const Json& a = (*args)[0];
          const Json* v = a.is_object() && a.contains("value") ? &a["value"] : nullptr;
          std::string t = v != nullptr && v->is_object() ? StrField(*v, "value") : "";
          allowed = !t.empty() && !LakeRelationTable(config, t).empty();
          if (!allowed && IsPlainName(t)) return UnknownTableError(t, config);
        }
      }
      if (!allowed) {
        return NotAllowedError(name.empty() ? std::string("this table function") : name);
      }
    }
    return Status::Ok();
  });
}

// Where an EXPLAIN statement's own statement starts, after "EXPLAIN", an optional "ANALYZE" and
// an optional "(option, ...)" list, skipping whitespace and comments; npos when `sql` is not in
// that form. Sets *analyze when the statement runs the query (EXPLAIN ANALYZE).
size_t ExplainedStatementStart(std::string_view sql, bool* analyze) {
  size_t i = 0;
  auto skip = [&] {
    i = SkipBlank(sql, i);
    return i != std::string_view::npos;
  };
  auto word = [&](std::string_view w) {
    if (sql.size() - i < w.size()) return false;
    for (size_t k = 0; k < w.size(); ++k) {
      if (std::toupper(static_cast<unsigned char>(sql[i + k])) != w[k]) return false;
    }
    size_t e = i + w.size();
    if (e < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[e])) || sql[e] == '_')) {
      return false;
    }
    i = e;
    return true;
  };
  *analyze = false;
  if (!skip() || !word("EXPLAIN") || !skip()) return std::string_view::npos;
  if (word("ANALYZE") || word("ANALYSE")) {
    *analyze = true;
    if (!skip()) return std::string_view::npos;
  } else if (i < sql.size() && sql[i] == '(') {
    size_t e = sql.find(')', i);
    if (e == std::string_view::npos) return std::string_view::npos;
    std::string options(sql.substr(i + 1, e - i - 1));
    for (auto& ch : options) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    *analyze = options.find("ANALY") != std::string::npos;
    i = e + 1;
    if (!skip()) return std::string_view::npos;
  }
  return i < sql.size() ? i : std::string_view::npos;
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

// Builds a row's JSON keeping integers beyond 64 bits (HUGEINT, UHUGEINT, big DECIMAL(38,0)) and
// decimals with more digits than a double holds exact, as strings of their digits: nlohmann
// would make them doubles and lose digits.
class ExactIntegerSax : public nlohmann::detail::json_sax_dom_parser<Json> {
 public:
  using nlohmann::detail::json_sax_dom_parser<Json>::json_sax_dom_parser;
  bool number_float(double value, const std::string& text) {
    // A DOUBLE arrives in at most 17 significant digits (DuckDB prints the shortest text that
    // reads back the same); more can only be a DECIMAL wider than a double.
    size_t digits = 0;
    bool leading = true;
    for (char c : text) {
      if (c == 'e' || c == 'E') break;
      if (c < '0' || c > '9') continue;
      leading = leading && c == '0';
      digits += leading ? 0 : 1;
    }
    if (text.find_first_of(".eE") == std::string::npos || digits > 17) {
      std::string exact = text;
      return string(exact);
    }
    return json_sax_dom_parser::number_float(value, text);
  }
};

// One row of DuckDB's to_json: NaN/Infinity quoted, wide integers exact; an empty object when
// it does not parse.
Json ParseRowJson(const std::string& text) {
  Json row;
  ExactIntegerSax sax(row, /*allow_exceptions=*/false);
  if (!Json::sax_parse(QuoteNonFiniteNumbers(text), &sax) || !row.is_object()) {
    return Json::object();
  }
  return row;
}

// Defines derived view `v` on `conn`. A view that cannot be defined (a `predictions` table
// declared in engage.toml without the columns `engage score` writes) fails every query reading it,
// with the reason, and leaves the other relations alone.
Status CreateDerivedView(DuckConn& conn, const DerivedView& v) {
  Status created =
      conn.Exec(fmt::format("CREATE OR REPLACE TEMP VIEW {} AS {}", SqlIdent(v.name), v.sql));
  if (created.ok()) return created;
  const std::string& m = created.message();
  std::string why = fmt::format("view '{}' cannot be read: {}", v.name, m.substr(0, m.find('\n')));
  return conn.Exec(
      fmt::format("CREATE OR REPLACE TEMP VIEW {} AS SELECT NULL AS unreadable WHERE "
                  "error({}) IS NULL",
                  SqlIdent(v.name), SqlQuote(why)));
}

// A view with the table's columns (as configured) and no rows, filtered by `where`.
std::string EmptyViewSql(const TableSpec& spec, const std::string& where) {
  std::string cols;
  for (const auto& col : spec.columns) {
    cols += fmt::format("CAST(NULL AS {}) AS {}, ", ColumnTypeSql(col.type), SqlIdent(col.name));
  }
  return fmt::format("SELECT {}CAST(NULL AS DATE) AS dt WHERE {}", cols, where);
}

std::string ParquetViewSql(const std::vector<std::string>& files) {
  return fmt::format(
      "SELECT * FROM read_parquet({}, hive_partitioning=true, hive_types={{'dt': DATE}})",
      SqlList(files));
}

std::string StripTrailing(std::string sql) {
  while (!sql.empty() &&
         (std::isspace(static_cast<unsigned char>(sql.back())) || sql.back() == ';')) {
    sql.pop_back();
  }
  return sql;
}

}  // namespace

namespace {

// rchar of /proc/self/io read through `fd` (at offset 0: procfs regenerates the text), or through
// a new descriptor when `fd` < 0. Stores in `*probe_bytes` how many bytes the reading itself
// read, which the next reading counts.
int64_t ReadRchar(int fd, int64_t* probe_bytes) {
  int own = -1;
  if (fd < 0) {
    own = ::open("/proc/self/io", O_RDONLY | O_CLOEXEC);
    if (own < 0) return 0;
    fd = own;
  }
  char buf[1024];
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (own >= 0) ::close(own);
  if (n <= 0) return 0;
  buf[n] = '\0';
  if (probe_bytes) *probe_bytes = n;
  const char* p = std::strstr(buf, "rchar:");
  return p ? std::strtoll(p + 6, nullptr, 10) : 0;
}

}  // namespace

int64_t ProcessReadBytes(int64_t* probe_bytes) {
  // One read(2) of the small file; its own bytes count towards the next reading, so callers
  // subtract `probe_bytes` from a difference of two readings.
  return ReadRchar(-1, probe_bytes);
}

// Interrupts the engine's running query at its deadline, when its caller cancels it, or once the
// process has really read more than the scan cutoff since it started (an estimate cannot bound
// every plan: a recursive query rescans); DuckDB then fails the query ("Interrupted") within a
// vector or so. One thread checks every 20 ms while a query is armed and sleeps otherwise; it is
// started by the first query that needs it, so a query costs a lock and a notify, not a thread.
class QueryEngine::Watchdog {
 public:
  enum class Stop { kNone, kTimeout, kCancelled, kRead };

  explicit Watchdog(int io_fd) : io_fd_(io_fd) {}
  ~Watchdog() {
    {
      std::lock_guard l(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  // Watches the query running on `conn` for `req` (kept until Disarm), which started when the
  // process had read `read_before` bytes.
  void Arm(duckdb_connection conn, const QueryRequest& req, int64_t read_before,
           int64_t max_read_bytes) {
    std::lock_guard l(mu_);
    conn_ = conn;
    req_ = &req;
    read_before_ = read_before;
    max_read_bytes_ = max_read_bytes;
    deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(req.timeout_ms);
    stop_ = Stop::kNone;
    armed_ = true;
    if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
    cv_.notify_all();
  }

  // Stops watching; once it returns, the request is not used any more. Why the query was
  // interrupted, if it was.
  Stop Disarm() {
    std::lock_guard l(mu_);  // a check in progress holds it: wait for it to end
    armed_ = false;
    req_ = nullptr;
    return stop_;
  }

 private:
  void Loop() {
    std::unique_lock l(mu_);
    while (!quit_) {
      if (!armed_ || stop_ != Stop::kNone) {
        cv_.wait(l);
        continue;
      }
      cv_.wait_for(l, std::chrono::milliseconds(20));
      if (quit_ || !armed_) continue;
      if (req_->timeout_ms > 0 && std::chrono::steady_clock::now() >= deadline_) {
        stop_ = Stop::kTimeout;
      } else if (req_->cancelled && req_->cancelled()) {
        stop_ = Stop::kCancelled;
      } else if (max_read_bytes_ > 0 &&
                 ReadRchar(io_fd_, nullptr) - read_before_ > max_read_bytes_) {
        stop_ = Stop::kRead;
      } else {
        continue;
      }
      duckdb_interrupt(conn_);
    }
  }

  const int io_fd_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool quit_ = false;
  bool armed_ = false;
  duckdb_connection conn_ = nullptr;
  const QueryRequest* req_ = nullptr;
  int64_t read_before_ = 0;
  int64_t max_read_bytes_ = 0;
  std::chrono::steady_clock::time_point deadline_;
  Stop stop_ = Stop::kNone;
  std::thread thread_;  // last: started after the state it reads
};

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

namespace {

std::string CsvField(std::string v) {
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string CsvCell(const Json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) {
    const std::string& text = v.get_ref<const std::string&>();
    return text.empty() ? "\"\"" : CsvField(text);  // "" is an empty string, nothing is NULL
  }
  if (v.is_number_float()) return fmt::format("{}", v.get<double>());
  return CsvField(DumpJson(v));
}

}  // namespace

std::string QueryResult::ToCsv() const {
  std::string out;
  for (size_t c = 0; c < columns.size(); ++c) {
    if (c > 0) out.push_back(',');
    out += CsvField(columns[c]);
  }
  out.push_back('\n');
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) {
      if (c > 0) out.push_back(',');
      out += CsvCell(row[c]);
    }
    out.push_back('\n');
  }
  return out;
}

QueryEngine::QueryEngine(lake::Lake& lake, lake::Catalog catalog, DuckDb db, DuckConn conn,
                         DuckConn run_conn)
    : lake_(lake),
      catalog_(std::move(catalog)),
      db_(std::move(db)),
      conn_(std::move(conn)),
      run_conn_(std::move(run_conn)) {}

QueryEngine::~QueryEngine() {
  watchdog_.reset();  // its thread reads io_fd_
  if (io_fd_ >= 0) ::close(io_fd_);
}

Result<std::unique_ptr<QueryEngine>> QueryEngine::Open(lake::Lake& lake, int threads) {
  // The engine's own connection to meta.db: a shared engine must not use the Lake's, which
  // belongs to whichever thread owns the Lake.
  ENGAGE_ASSIGN_OR_RETURN(lake::Catalog catalog, lake::Catalog::Open(lake.home().meta_db()));
  ENGAGE_ASSIGN_OR_RETURN(DuckDb db, DuckDb::Open({.threads = threads,
                                                   .memory_limit = lake.config().query.memory_limit,
                                                   .temp_directory = SpillDir(lake)}));
  ENGAGE_ASSIGN_OR_RETURN(DuckConn conn, db.Connect());
  ENGAGE_ASSIGN_OR_RETURN(DuckConn run_conn, db.Connect());
  std::unique_ptr<QueryEngine> qe(new QueryEngine(lake, std::move(catalog), std::move(db),
                                                  std::move(conn), std::move(run_conn)));
  qe->io_fd_ = ::open("/proc/self/io", O_RDONLY | O_CLOEXEC);
  qe->watchdog_ = std::make_unique<Watchdog>(qe->io_fd_);
  DuckConn& c = qe->conn_;
  ENGAGE_RETURN_IF_ERROR(c.Exec("SET TimeZone='UTC'"));
  ENGAGE_RETURN_IF_ERROR(qe->run_conn_.Exec("SET TimeZone='UTC'"));
  // Engage's own SQL functions (engage_bin_counts, for drift): registered in the database, so
  // both connections see them.
  ENGAGE_RETURN_IF_ERROR(RegisterEngageFunctions(c));
  // Footers are read once per process, not by planning and again by the query.
  ENGAGE_RETURN_IF_ERROR(c.Exec("SET parquet_metadata_cache=true"));
  // The sandbox: from here on only the tables' directories (not the quarantine, not staging) and
  // the home's tmp/ (DuckDB's spill files, Engage's own intermediate Parquet files) are readable,
  // and nothing can be changed. User SQL is further limited to catalogued files (see Run). The
  // views, built after this, read the tables' directories only.
  std::vector<std::string> readable{lake.home().tmp() + "/"};
  for (const auto& [name, spec] : lake.config().tables) {
    readable.push_back(lake.home().lake() + "/" + name + "/");
  }
  ENGAGE_RETURN_IF_ERROR(c.Exec(fmt::format("SET allowed_directories={}", SqlList(readable))));
  ENGAGE_RETURN_IF_ERROR(c.Exec("SET enable_external_access=false"));
  ENGAGE_RETURN_IF_ERROR(c.Exec("SET lock_configuration=true"));
  // Every query's parse tree comes from this statement: preparing it once saves parsing,
  // binding and constant-folding the call itself (half a millisecond a query).
  ENGAGE_ASSIGN_OR_RETURN(qe->parse_tree_,
                          lake::DuckPrepared::Prepare(c, "SELECT json_serialize_sql($1::VARCHAR)"));
  std::lock_guard lock(qe->mu_);
  ENGAGE_RETURN_IF_ERROR(qe->Refresh());
  return qe;
}

Result<std::vector<lake::LakeFile>> QueryEngine::CatalogFiles(const std::string& table) {
  std::lock_guard<std::mutex> lock(mu_);
  return catalog_.Files(table);
}

int64_t QueryEngine::ViewBuildsForTesting() {
  std::lock_guard lock(mu_);
  return view_builds_;
}

int64_t QueryEngine::RunViewBuildsForTesting() {
  std::lock_guard lock(mu_);
  return run_view_builds_;
}

int64_t QueryEngine::CheckedQueryHitsForTesting() {
  std::lock_guard lock(mu_);
  return checked_hits_;
}

Status QueryEngine::Refresh() {
  ENGAGE_ASSIGN_OR_RETURN(int64_t generation, catalog_.Generation());
  if (generation == generation_) return Status::Ok();
  ENGAGE_ASSIGN_OR_RETURN(lake::FileSnapshot snapshot, catalog_.Snapshot());
  return BuildViews(snapshot);
}

Status QueryEngine::BuildViews(const lake::FileSnapshot& snapshot) {
  std::map<std::string, std::vector<std::string>> table_files;
  std::map<std::string, FileInfo, std::less<>> files;
  std::set<std::string> damaged;
  for (const auto& f : snapshot.files) {
    if (!lake_.config().tables.count(f.table)) continue;  // not configured (any more)
    std::string abs = lake_.AbsPath(f.path);
    table_files[f.table].push_back(abs);
    files[abs] = FileInfo{f.table, f.dt, f.bytes};
  }
  for (const auto& [name, spec] : lake_.config().tables) {
    auto it = table_files.find(name);
    std::string view =
        it == table_files.end() ? EmptyViewSql(spec, "false") : ParquetViewSql(it->second);
    Status created =
        conn_.Exec(fmt::format("CREATE OR REPLACE TEMP VIEW {} AS {}", SqlIdent(name), view));
    if (!created.ok()) {
      // A damaged table (e.g. a data file deleted by hand) must not take the other tables down:
      // its view fails every query that reads it, with the reason.
      const std::string& m = created.message();
      std::string why =
          fmt::format("table '{}' cannot be read: {}", name, m.substr(0, m.find('\n')));
      ENGAGE_RETURN_IF_ERROR(conn_.Exec(
          fmt::format("CREATE OR REPLACE TEMP VIEW {} AS {}", SqlIdent(name),
                      EmptyViewSql(spec, fmt::format("error({}) IS NULL", SqlQuote(why))))));
      damaged.insert(name);
    }
  }
  for (const DerivedView& v : DerivedViews(lake_.config())) {
    ENGAGE_RETURN_IF_ERROR(CreateDerivedView(conn_, v));
  }
  table_files_ = std::move(table_files);
  files_ = std::move(files);
  damaged_ = std::move(damaged);
  run_views_.clear();  // they read files of the previous generation
  checked_.clear();    // resolved against the previous generation's files
  checked_paths_ = 0;
  generation_ = snapshot.generation;
  ++view_builds_;
  spdlog::debug("query engine: views built for generation {} ({} files)", generation_,
                files_.size());
  return Status::Ok();
}

Result<DuckConn*> QueryEngine::RunConnection(const std::set<std::string>& tables,
                                             const Resolution& resolved) {
  static const std::vector<std::string> kNone;
  auto all_files = [this](const std::string& t) -> const std::vector<std::string>& {
    auto it = table_files_.find(t);
    return it == table_files_.end() ? kNone : it->second;
  };
  if (!resolved.self_contained) return &conn_;
  bool restrict = false;
  for (const auto& t : tables) {
    if (damaged_.count(t)) return &conn_;  // its full view reports why it cannot be read
    auto it = resolved.files.find(t);
    size_t n = it == resolved.files.end() ? 0 : it->second.size();
    if (n < all_files(t).size()) restrict = true;
  }
  if (!restrict) return &conn_;
  for (const auto& t : tables) {
    const std::vector<std::string>& all = all_files(t);
    auto it = resolved.files.find(t);
    std::vector<std::string> want;
    for (const auto& f : all) {
      if (it != resolved.files.end() && it->second.count(f)) want.push_back(f);
    }
    auto current = run_views_.find(t);
    if (current != run_views_.end() && current->second == want) continue;
    run_views_.erase(t);
    std::string view;
    if (all.empty()) {
      ENGAGE_ASSIGN_OR_RETURN(const TableSpec* spec, lake_.config().Table(t));
      view = EmptyViewSql(*spec, "false");
    } else {
      // The table's first file leads the list: DuckDB takes a list's schema from its first file,
      // so the view has exactly the columns of the full one. The run prunes it by the query's
      // filters as the plan did, unless the plan read it.
      std::vector<std::string> files{all.front()};
      for (const auto& f : want) {
        if (f != all.front()) files.push_back(f);
      }
      view = ParquetViewSql(files) + (want.empty() ? " WHERE false" : "");
    }
    Status created =
        run_conn_.Exec(fmt::format("CREATE OR REPLACE TEMP VIEW {} AS {}", SqlIdent(t), view));
    if (!created.ok()) {
      const std::string& m = created.message();
      return UnavailableError(
          fmt::format("table '{}' cannot be read: {}", t, m.substr(0, m.find('\n'))));
    }
    run_views_[t] = std::move(want);
    ++run_view_builds_;
    // The derived views over `t` read its new view on this connection.
    for (const DerivedView& v : DerivedViews(lake_.config())) {
      if (v.table == t) ENGAGE_RETURN_IF_ERROR(CreateDerivedView(run_conn_, v));
    }
  }
  return &run_conn_;
}

Result<QueryEngine::Resolution> QueryEngine::ResolveScans(const std::string& sql,
                                                          bool reads_tables) {
  Resolution resolved;
  std::vector<TableScan>& out = resolved.scans;
  bool pruned_to_nothing = false;
  bool optimized = true;
  // Pass 0 reads the optimized plan (files left after pruning); pass 1 the bound plan before
  // optimization, to learn the tables of scans the optimizer left without files or removed: a
  // scan pruned to no file at all, or one answered from metadata while planning (count(*) of
  // one file) when the query reads tables.
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1 &&
        !(pruned_to_nothing || (optimized && !resolved.self_contained && reads_tables))) {
      break;
    }
    auto serialized = conn_.Query(fmt::format("SELECT json_serialize_plan({}, optimize := {})",
                                              SqlQuote(sql), pass == 0 && optimized));
    if (!serialized.ok()) return ClassifyError(serialized.status().message());
    // Constants in the plan may be NaN or Infinity, which DuckDB writes bare.
    auto parsed = ParseJson(QuoteNonFiniteNumbers(serialized->Str(0, 0).value_or("")),
                            "the query's plan", 1 << 20);
    if (!parsed.ok() || !parsed->is_object()) {
      return PermissionDeniedError("cannot determine which tables the query reads");
    }
    const Json& plan = *parsed;
    if (plan.value("error", true) && pass == 0 && optimized &&
        plan.value("error_type", "") == "internal") {
      // DuckDB 1.4 fails to serialize some optimized plans (e.g. several aggregates over a
      // Parquet scan: "Failed to bind column reference count_star()"). The bound plan before
      // optimization names the same scans with every file of each table: an upper bound for the
      // estimate, and no partition filter known (a table requiring one is refused).
      optimized = false;
      --pass;
      continue;
    }
    if (plan.value("error", true) && StrField(plan, "error_type") == "catalog" &&
        StrField(plan, "error_subtype") == "MISSING_ENTRY" && StrField(plan, "type") == "Table") {
      return UnknownTableError(StrField(plan, "name"), lake_.config());
    }
    if (plan.value("error", true)) {
      std::string why = plan.value("error_message", std::string("unknown reason"));
      if (plan.value("error_type", "") == "not implemented") {
        return PermissionDeniedError(fmt::format(
            "cannot determine which tables the query reads ({}); rewrite it as a plain SELECT",
            why.substr(0, why.find('\n'))));
      }
      return ClassifyError(why);
    }
    if (pass == 0 && optimized) {
      resolved.self_contained = true;
      Status walked = ForEachObject(plan, [&resolved](const Json& n) {
        std::string type = StrField(n, "type");
        if (type.rfind("LOGICAL_", 0) == 0 && !ComputesFromItsInputs(type)) {
          resolved.self_contained = false;
        }
        return Status::Ok();
      });
      (void)walked;  // the visitor never fails
    }
    for (const Json* get : PlanScans(plan)) {
      std::string name = StrField(*get, "name");
      if (name != "read_parquet" && name != "parquet_scan") {
        if (IsAllowedGenerator(name)) continue;
        return NotAllowedError(name.empty() ? std::string("a scan of an unknown kind") : name);
      }
      const Json* files = nullptr;
      if (auto fd = get->find("function_data"); fd != get->end() && fd->is_object()) {
        if (auto f = fd->find("files"); f != fd->end() && f->is_array()) files = &*f;
      }
      if (files == nullptr) {
        return PermissionDeniedError("cannot determine which files a Parquet scan reads");
      }
      if (files->empty()) pruned_to_nothing = true;
      std::string filter;
      if (auto info = get->find("extra_info"); info != get->end() && info->is_object()) {
        filter = StrField(*info, "file_filters");
      }
      // One scan may read files of several tables (read_parquet over a list): one entry each.
      std::map<std::string, TableScan> per_table;
      std::map<std::string, std::set<std::string>> dts;
      for (const auto& f : *files) {
        auto it = f.is_string() ? files_.find(f.get<std::string>()) : files_.end();
        if (it == files_.end()) {
          return PermissionDeniedError(
              "the query reads files that are not part of a lake table; read the tables by name");
        }
        TableScan& ts = per_table[it->second.table];
        ts.table = it->second.table;
        // Pass 1 only names the table of a scan pruned to nothing: it reads none of these.
        if (pass == 0) resolved.files[ts.table].insert(it->first);
        ts.files_scanned += 1;
        ts.estimated_bytes += it->second.bytes;
        dts[ts.table].insert(it->second.dt);
      }
      for (auto& [table, ts] : per_table) {
        auto all = table_files_.find(table);
        ts.files_total = all == table_files_.end() ? 0 : static_cast<int64_t>(all->second.size());
        if (pass == 1) {
          // Only the table matters here: the optimized plan reads none of its files.
          bool known = std::any_of(out.begin(), out.end(),
                                   [&t = table](const TableScan& o) { return o.table == t; });
          if (known) continue;
          ts.files_scanned = 0;
          ts.estimated_bytes = 0;
          ts.file_filter = "(pruned to no file)";
          out.push_back(std::move(ts));
          continue;
        }
        ts.partitions_scanned = static_cast<int64_t>(dts[table].size());
        ts.file_filter = filter;
        out.push_back(std::move(ts));
      }
    }
  }
  return resolved;
}

void QueryEngine::Record(const QueryRequest& req, const std::string& status,
                         const std::string& error, const QueryResult* r, const UsageSample* start) {
  // Measured before anything is recorded: the records' own writes are not the query's.
  const UsageSample end = start != nullptr ? UsageSample::Now() : UsageSample{};
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
  Status s = catalog_.RecordQuery(q);
  if (!s.ok()) spdlog::warn("could not record query history: {}", s.ToString());
  if (start == nullptr || r == nullptr) return;
  const CostContext& context = CurrentCostContext();
  lake::LedgerEntry e;
  e.at = q.at;
  e.kind = "query";
  e.name = req.source;
  e.parent = context.parent;
  e.execution_id = context.execution_id;
  e.pipeline = context.pipeline;
  e.step = context.step;
  e.model = context.model;
  for (const std::string& t : r->tables) e.tables += (e.tables.empty() ? "" : ",") + t;
  e.usage.peak_memory_bytes = PeakMemoryBytes();
  e.usage.cpu_seconds = std::max(0.0, end.cpu_seconds - start->cpu_seconds);
  e.usage.wall_seconds = r->elapsed_ms / 1000.0;
  e.usage.bytes_read = r->bytes_scanned;
  e.usage.bytes_written = std::max<int64_t>(0, end.bytes_written - start->bytes_written);
  e.cloud_usd = r->cost_usd;
  const Prices& prices = lake_.config().prices;
  e.detail = Json{{"service", "athena"},
                  {"bytes_scanned", r->bytes_scanned},
                  {"usd_per_tb", prices.scan_usd_per_tb},
                  {"min_bytes", prices.min_bytes_per_query}};
  s = catalog_.RecordCost(e);
  if (!s.ok()) spdlog::warn("could not record the query's cost: {}", s.ToString());
  if (hooks_.recorded) hooks_.recorded(e);
}

void QueryEngine::SetHooks(QueryHooks hooks) {
  std::lock_guard lock(mu_);
  hooks_ = std::move(hooks);
}

// Exactly one statement, and it must read only. DuckDB's parse tree serializer accepts only
// SELECT statements; anything else DuckDB parses is refused as not read-only (it is never
// bound: binding a write already touches the catalog), except EXPLAIN of a SELECT, which is
// checked, authorized and metered like the SELECT (EXPLAIN ANALYZE runs it).
Result<QueryEngine::CheckedQuery> QueryEngine::CheckText(const std::string& sql) {
  CheckedQuery c;
  c.stmt = sql;
  for (int pass = 0; pass < 2; ++pass) {
    auto tree = parse_tree_.Run(c.stmt);
    if (!tree.ok()) return ClassifyError(tree.status().message());
    auto parsed = ParseJson(tree->Str(0, 0).value_or("{}"), "the query's parse tree", 1 << 20);
    if (!parsed.ok()) return InvalidArgumentError("cannot parse the query");
    const Json& j = *parsed;
    if (!j.value("error", false)) {
      size_t n =
          j.contains("statements") && j["statements"].is_array() ? j["statements"].size() : 0;
      if (n != 1) {
        return InvalidArgumentError(
            fmt::format("expected exactly one SQL statement, got {}", static_cast<int64_t>(n)));
      }
      std::set<std::string> referenced;
      Status checked = CheckParseTree(j, lake_.config(), &referenced, &c.reads_tables);
      if (!checked.ok()) return checked;
      for (const auto& t : referenced) {
        std::string table = LakeRelationTable(lake_.config(), t);
        if (!table.empty()) c.named.insert(table);
      }
      break;
    }
    if (j.value("error_type", "") == "parser") {
      return InvalidArgumentError("syntax error: " +
                                  j.value("error_message", std::string("cannot parse the query")));
    }
    if (pass == 1) {
      return PermissionDeniedError(fmt::format(
          "only read-only queries are allowed (SELECT or EXPLAIN SELECT); this explains {}",
          StatementKind(c.stmt)));
    }
    // Not every statement is a SELECT: count them (parsing only).
    Extracted ex;
    idx_t n = duckdb_extract_statements(conn_.raw(), sql.c_str(), ex.out());
    if (n == 0) {
      // Some writes fail while parsing (IMPORT DATABASE reads files then): still writes.
      if (StatementKind(sql) != "not a SELECT statement") {
        return PermissionDeniedError(
            fmt::format("only read-only queries are allowed (SELECT or EXPLAIN); this is {}",
                        StatementKind(sql)));
      }
      const char* err = duckdb_extract_statements_error(ex.get());
      return InvalidArgumentError(err ? err : "cannot parse the query");
    }
    if (n != 1) {
      std::vector<std::string_view> pieces = SplitStatements(sql);
      for (size_t k = 0; k < pieces.size(); ++k) {
        if (!IsReadKeyword(LeadingKeyword(pieces[k]))) {
          return PermissionDeniedError(fmt::format(
              "only read-only queries are allowed (one SELECT or EXPLAIN); statement {} of {} is "
              "{}",
              k + 1, static_cast<int64_t>(n), StatementKind(pieces[k])));
        }
      }
      return InvalidArgumentError(
          fmt::format("expected exactly one SQL statement, got {}", static_cast<int64_t>(n)));
    }
    bool analyze = false;
    size_t at = ExplainedStatementStart(sql, &analyze);
    if (at == std::string::npos) {
      if (LeadingKeyword(sql) == "EXPLAIN") {
        return InvalidArgumentError(
            "write EXPLAIN as EXPLAIN [ANALYZE | (options)] SELECT ...; this form is not "
            "supported");
      }
      return PermissionDeniedError(
          fmt::format("only read-only queries are allowed (SELECT or EXPLAIN); this is {}",
                      StatementKind(sql)));
    }
    c.explain = true;
    c.stmt = sql.substr(at);
  }

  // The plan of the SELECT that runs (or is explained), not of the wrapper Run puts around it:
  // DuckDB 1.4 fails to serialize the optimized plan of the wrapper around many queries (to_json
  // over SELECT *), which would leave only the bound plan's upper bound; the wrapper changes
  // neither the scans nor their filters.
  ENGAGE_ASSIGN_OR_RETURN(c.resolved, ResolveScans(c.stmt, c.reads_tables));
  return c;
}

Result<QueryResult> QueryEngine::Run(const QueryRequest& req) {
  std::lock_guard lock(mu_);
  const Clock& clock = lake_.clock();
  int64_t t0 = clock.MonotonicMicros();
  const UsageSample start = UsageSample::Now();
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
  if (size_t nul = sql.find('\0'); nul != std::string::npos) {
    // DuckDB would stop reading at it, or quote the rest in a confusing parser error.
    return fail(InvalidArgumentError(fmt::format(
        "the query holds a NUL byte (at byte {}): SQL is text; check the file's encoding", nul)));
  }
  if (!IsValidUtf8(sql)) {
    return fail(InvalidArgumentError(
        "the query is not valid UTF-8 text; check the file's encoding (e.g. iconv -f latin1)"));
  }
  if (Status fresh = Refresh(); !fresh.ok()) return fail(fresh);

  // The query's text checked and its plan resolved: once per text and catalog generation (a
  // dashboard repeats its queries); authorization, limits and the run happen every time.
  // The cache is bounded: long texts and plans over many files are not kept, and it starts over
  // once it holds too many texts or file paths.
  const CheckedQuery* checked = nullptr;
  CheckedQuery uncached;
  if (auto it = checked_.find(sql); it != checked_.end()) {
    checked = &it->second;
    ++checked_hits_;
  } else {
    auto fresh = CheckText(sql);
    if (!fresh.ok()) return fail(fresh.status());
    size_t paths = 0;
    for (const auto& [table, files] : fresh->resolved.files) paths += files.size();
    if (sql.size() > kMaxCheckedText || paths > kMaxCheckedPaths / 8) {
      uncached = std::move(*fresh);
      checked = &uncached;
    } else {
      if (checked_.size() >= kMaxCheckedQueries || checked_paths_ + paths > kMaxCheckedPaths) {
        checked_.clear();
        checked_paths_ = 0;
      }
      checked_paths_ += paths;
      checked = &checked_.emplace(sql, std::move(*fresh)).first->second;
    }
  }
  const bool explain = checked->explain;
  const Resolution& resolved = checked->resolved;
  spdlog::debug("query: checked and resolved in {} us", clock.MonotonicMicros() - t0);

  // What runs: a SELECT limited to max_result_rows + 1 rows so huge results cannot exhaust
  // memory. DuckDB renders each SELECT row as JSON itself (to_json of the row), so every type —
  // timestamps with time zones, decimals, lists, structs — arrives intact; the row's own columns
  // ride along for their names and types (reading them in one statement avoids binding the query
  // twice). An EXPLAIN runs as written.
  const int64_t max_rows = lake_.config().query.max_result_rows;
  const bool select = !explain;
  const std::string run_sql =
      select
          ? fmt::format("SELECT to_json(__q), __q.* FROM (\n{}\n) __q LIMIT {}", sql, max_rows + 1)
          : sql;

  QueryResult result;
  result.dry_run = req.dry_run;
  result.scans = resolved.scans;
  result.tables = checked->named;
  for (const auto& s : result.scans) result.tables.insert(s.table);
  if (req.authorize) {
    Status allowed = req.authorize(result.tables);
    if (!allowed.ok()) return fail(allowed);
  }
  for (const auto& s : result.scans) {
    result.estimated_bytes += s.estimated_bytes;
    result.partitions_scanned += s.partitions_scanned;
    auto spec = lake_.config().Table(s.table);
    // A scan is filtered when DuckDB pushed a filter into the file list or it reads a strict
    // subset of the table's files (read_parquet over one partition's directory).
    bool filtered = !s.file_filter.empty() || s.files_scanned < s.files_total;
    if (spec.ok() && (*spec)->require_partition_filter && !filtered) {
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
  if (hooks_.admit && !req.dry_run) {  // a dry run costs nothing: it shows the estimate
    if (Status admitted = hooks_.admit(result, req); !admitted.ok()) return fail(admitted);
  }
  if (req.dry_run) {
    result.elapsed_ms = static_cast<double>(clock.MonotonicMicros() - t0) / 1000.0;
    Record(req, "dry_run", "", &result);
    return result;
  }

  // A SELECT runs on views of only the files its plan resolved: binding it then costs little (the
  // plan already checked the full file lists), and it can read nothing the plan did not resolve.
  DuckConn* conn = &conn_;
  if (select) {
    auto chosen = RunConnection(result.tables, resolved);
    if (!chosen.ok()) return fail(chosen.status());
    conn = *chosen;
  }
  DuckResult res;
  {
    auto r = MeteredQuery(*conn, run_sql, &result.bytes_scanned, &req, cutoff);
    if (!r.ok()) {
      const StatusCode code = r.status().code();
      return fail(code == StatusCode::kDeadlineExceeded || code == StatusCode::kCancelled ||
                          code == StatusCode::kResourceExhausted
                      ? r.status()
                      : ClassifyError(r.status().message()));
    }
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
      Json obj = ParseRowJson(res.Str(0, r).value_or("{}"));
      for (auto& [k, v] : obj.items()) row.push_back(std::move(v));
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
  Record(req, "ok", "", &result, &start);
  spdlog::debug("query: recorded in {} us", clock.MonotonicMicros() - t0);
  return result;
}

Result<DuckResult> QueryEngine::MeteredQuery(DuckConn& conn, const std::string& sql,
                                             int64_t* bytes_scanned, const QueryRequest* req,
                                             int64_t max_read_bytes) {
  std::lock_guard lock(MeterMutex());
  int64_t probe = 0;
  const int64_t before = ReadRchar(io_fd_, &probe);
  const bool watched =
      req != nullptr && (req->timeout_ms > 0 || req->cancelled || max_read_bytes > 0);
  if (watched) watchdog_->Arm(conn.raw(), *req, before, max_read_bytes);
  auto r = conn.Query(sql);
  int64_t after = ReadRchar(io_fd_, nullptr);
  *bytes_scanned = std::max<int64_t>(0, after - before - probe);
  if (!watched) return r;
  switch (watchdog_->Disarm()) {
    case Watchdog::Stop::kTimeout:
      return Status(StatusCode::kDeadlineExceeded,
                    fmt::format("the query was stopped after its time limit of {} s ([query] "
                                "timeout_seconds in engage.toml, or --timeout)",
                                static_cast<double>(req->timeout_ms) / 1000.0));
    case Watchdog::Stop::kCancelled:
      return Status(StatusCode::kCancelled,
                    "the query was cancelled (the client went away or the server is stopping)");
    case Watchdog::Stop::kRead:
      return ResourceExhaustedError(fmt::format(
          "the query was stopped after reading more than the scan cutoff of {} bytes (it read "
          "{} bytes); filter on dt to read fewer partitions or raise --max-scan-bytes",
          max_read_bytes, *bytes_scanned));
    case Watchdog::Stop::kNone:
      break;
  }
  return r;
}

namespace {

// The lake tables Engage-written SQL names (as whole words, any case): what a trusted query reads,
// for the ledger (its plan is not resolved).
std::set<std::string> NamedTables(const std::string& sql,
                                  const std::map<std::string, std::vector<std::string>>& tables) {
  std::string lower = sql;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  std::set<std::string> out;
  for (const auto& [table, files] : tables) {
    for (size_t at = lower.find(table); at != std::string::npos; at = lower.find(table, at + 1)) {
      size_t end = at + table.size();
      if ((at == 0 || !word(lower[at - 1])) && (end >= lower.size() || !word(lower[end]))) {
        out.insert(table);
        break;
      }
    }
  }
  return out;
}

}  // namespace

Result<DuckResult> QueryEngine::RunTrusted(const std::string& sql, const std::string& source) {
  std::lock_guard lock(mu_);
  const Clock& clock = lake_.clock();
  int64_t t0 = clock.MonotonicMicros();
  const UsageSample start = UsageSample::Now();
  QueryRequest req;
  req.sql = sql;
  req.source = source;
  QueryResult meter;
  if (Status fresh = Refresh(); !fresh.ok()) {
    Record(req, "error", fresh.message(), nullptr);
    return fresh;
  }
  auto r = MeteredQuery(conn_, sql, &meter.bytes_scanned);
  if (!r.ok()) {
    Status s = ClassifyError(r.status().message());
    Record(req, "error", s.message(), nullptr);
    return s;
  }
  meter.row_count = r->RowCount();
  meter.cost_usd = CostUsd(lake_.config().prices, meter.bytes_scanned);
  meter.elapsed_ms = static_cast<double>(clock.MonotonicMicros() - t0) / 1000.0;
  meter.tables = NamedTables(sql, table_files_);
  Record(req, "ok", "", &meter, &start);
  return r;
}

std::string QueryResult::Summary() const {
  if (dry_run) {
    return fmt::format(
        "dry run: would scan about {} ({} bytes) in {} partition(s); estimated cost {}",
        HumanBytes(estimated_bytes), estimated_bytes, partitions_scanned, Usd(estimated_cost_usd));
  }
  return fmt::format(
      "{} row(s){} | scanned {} (estimate {}) in {} partition(s) | cost {} | {:.1f} ms", row_count,
      truncated ? " (truncated at [query] max_result_rows)" : "", HumanBytes(bytes_scanned),
      HumanBytes(estimated_bytes), partitions_scanned, Usd(cost_usd), elapsed_ms);
}

std::string QueryResult::Table(int64_t max_rows) const {
  const int64_t total = static_cast<int64_t>(rows.size());
  const int64_t shown = max_rows > 0 ? std::min(max_rows, total) : total;
  std::vector<std::vector<std::string>> cells;
  for (int64_t i = 0; i < shown; ++i) {
    cells.emplace_back();
    for (const Json& v : rows[static_cast<size_t>(i)]) {
      cells.back().push_back(v.is_null()           ? "NULL"
                             : v.is_string()       ? v.get<std::string>()
                             : v.is_number_float() ? fmt::format("{}", v.get<double>())
                                                   : DumpJson(v));
    }
  }
  std::string out = FormatTable(columns, cells);
  if (shown < total) {
    out += fmt::format(
        "... {} more rows (--max-rows 0 shows them all; --csv or --json prints every row)\n",
        total - shown);
  }
  return out;
}

Result<std::string> SqlFromArguments(const std::string& sql, const std::string& file) {
  if (!file.empty() && !sql.empty()) {
    return InvalidArgumentError("give the SQL as an argument or with --file, not both");
  }
  if (file.empty() && sql.empty()) {
    return InvalidArgumentError(
        "no SQL: give it as an argument, with --file FILE, or as - to read stdin");
  }
  if (file.empty() && sql != "-") return sql;
  return ReadTextArgument(file.empty() ? "-" : file, "SQL file", 16 << 20);
}

}  // namespace engage::sql
