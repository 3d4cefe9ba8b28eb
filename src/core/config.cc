#include "engage/core/config.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <cmath>
#include <set>

#include "engage/core/fs.h"

namespace engage {
namespace {

Result<ColumnType> ParseType(const std::string& s) {
  if (s == "string") return ColumnType::kString;
  if (s == "int64") return ColumnType::kInt64;
  if (s == "double") return ColumnType::kDouble;
  if (s == "bool") return ColumnType::kBool;
  if (s == "timestamp") return ColumnType::kTimestamp;
  if (s == "date") return ColumnType::kDate;
  return InvalidArgumentError(fmt::format(
      "unknown type '{}' (expected string, int64, double, bool, timestamp or date)", s));
}

template <typename T>
std::optional<T> Get(const toml::table& t, std::string_view key) {
  if (auto v = t[key].value<T>()) return *v;
  return std::nullopt;
}

// "4GB", "512MB", "1.5GiB", "800KB": DuckDB's memory sizes (a number and a unit).
bool IsMemorySize(std::string_view s) {
  size_t i = 0;
  bool digits = false;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) {
    digits = digits || s[i] != '.';
    ++i;
  }
  while (i < s.size() && s[i] == ' ') ++i;
  std::string unit;
  for (; i < s.size(); ++i) unit.push_back(static_cast<char>(std::toupper(s[i])));
  static const std::set<std::string> kUnits = {"B",   "KB",  "MB",  "GB", "TB",
                                               "KIB", "MIB", "GIB", "TIB"};
  return digits && kUnits.count(unit) > 0;
}

// The TOML type each scalar key must have; a mistyped value is an error, never a default.
Status CheckValueType(std::string_view key, const toml::node& v, const std::string& where) {
  static const std::set<std::string_view> kBool = {"required", "header",
                                                   "require_partition_filter"};
  static const std::set<std::string_view> kInt = {
      "retention_days",  "max_future_days",     "max_length",
      "max_line_bytes",  "min_bytes_per_query", "max_scan_bytes",
      "max_result_rows", "timeout_seconds",     "days"};
  static const std::set<std::string_view> kNumber = {
      "min", "max", "scan_usd_per_tb", "max_age_hours", "max_change_percent", "max_reject_percent"};
  static const std::set<std::string_view> kString = {
      "name",      "type",  "source",       "expr",     "format",  "time_column", "min_time",
      "delimiter", "quote", "memory_limit", "severity", "pattern", "column",      "where"};
  const char* want = nullptr;
  if (kBool.count(key) && !v.is_boolean()) want = "a boolean (true/false)";
  if (kInt.count(key) && !v.is_integer()) want = "an integer";
  if (kNumber.count(key) && !v.is_number()) want = "a number";
  if (kString.count(key) && !v.is_string()) want = "a string";
  if (!want) return Status::Ok();
  return InvalidArgumentError(fmt::format("{}: '{}' must be {}", where, key, want));
}

Status CheckKeys(const toml::table& t, const std::set<std::string>& allowed,
                 const std::string& where) {
  for (const auto& [k, v] : t) {
    if (!allowed.count(std::string(k.str()))) {
      return InvalidArgumentError(fmt::format("{}: unknown key '{}'", where, k.str()));
    }
    ENGAGE_RETURN_IF_ERROR(CheckValueType(k.str(), v, where));
  }
  return Status::Ok();
}

// The price sheet: every key a finite number from 0 to kMaxPrice (min_bytes_per_query a whole one
// up to a petabyte), so that no price can make a cost overflow to infinity.
constexpr double kMaxPrice = 1e6;
constexpr int64_t kMaxMinBytes = 1'000'000'000'000'000;

Status ParsePrices(const toml::table& t, const std::string& where, Prices* prices) {
  struct Key {
    const char* name;
    double Prices::*field;
  };
  static const Key kKeys[] = {
      {"scan_usd_per_tb", &Prices::scan_usd_per_tb},
      {"state_transition_usd", &Prices::state_transition_usd},
      {"fargate_vcpu_hour_usd", &Prices::fargate_vcpu_hour_usd},
      {"fargate_gb_hour_usd", &Prices::fargate_gb_hour_usd},
      {"fargate_min_seconds", &Prices::fargate_min_seconds},
      {"lambda_request_usd", &Prices::lambda_request_usd},
      {"lambda_gb_second_usd", &Prices::lambda_gb_second_usd},
      {"lambda_memory_gb", &Prices::lambda_memory_gb},
      {"dynamodb_read_usd", &Prices::dynamodb_read_usd},
      {"dynamodb_write_usd", &Prices::dynamodb_write_usd},
      {"s3_gb_month_usd", &Prices::s3_gb_month_usd},
      {"s3_put_usd", &Prices::s3_put_usd},
      {"s3_get_usd", &Prices::s3_get_usd},
  };
  for (const auto& [k, v] : t) {
    std::string key(k.str());
    if (key == "min_bytes_per_query") {
      auto n = v.value<int64_t>();
      if (!v.is_integer() || !n || *n < 0 || *n > kMaxMinBytes) {
        return InvalidArgumentError(
            fmt::format("{}: 'min_bytes_per_query' must be a whole number of bytes from 0 to {}",
                        where, kMaxMinBytes));
      }
      prices->min_bytes_per_query = *n;
      continue;
    }
    const Key* found = nullptr;
    for (const Key& known : kKeys) {
      if (key == known.name) found = &known;
    }
    if (found == nullptr) {
      return InvalidArgumentError(fmt::format("{}: unknown key '{}'", where, key));
    }
    auto x = v.value<double>();
    if (!(v.is_number() && x && std::isfinite(*x) && *x >= 0 && *x <= kMaxPrice)) {
      return InvalidArgumentError(
          fmt::format("{}: '{}' must be a number from 0 to {:g} (USD, or GB for lambda_memory_gb)",
                      where, key, kMaxPrice));
    }
    prices->*(found->field) = *x;
  }
  return Status::Ok();
}

Status ParseAlerts(const toml::table& t, const std::string& where, AlertsConfig* alerts) {
  for (const auto& [k, v] : t) {
    std::string key(k.str());
    if (key == "webhook_url" || key == "command") {
      if (!v.is_string())
        return InvalidArgumentError(fmt::format("{}: '{}' must be a string", where, key));
      (key == "command" ? alerts->command : alerts->webhook_url) = *v.value<std::string>();
    } else if (key == "max_attempts" || key == "timeout_seconds") {
      auto n = v.value<int64_t>();
      int64_t hi = key == "max_attempts" ? 10 : 60;
      if (!v.is_integer() || !n || *n < 1 || *n > hi) {
        return InvalidArgumentError(
            fmt::format("{}: '{}' must be a whole number from 1 to {}", where, key, hi));
      }
      (key == "max_attempts" ? alerts->max_attempts : alerts->timeout_seconds) = *n;
    } else {
      return InvalidArgumentError(fmt::format("{}: unknown key '{}'", where, key));
    }
  }
  const std::string& url = alerts->webhook_url;
  if (!url.empty() && url.rfind("http://", 0) != 0) {
    return InvalidArgumentError(fmt::format(
        "{}: 'webhook_url' must start with http:// (got '{}'); for HTTPS, run a local relay or use "
        "'command' with curl",
        where, url));
  }
  if (!url.empty()) {
    // http://host[:port][/path]: a host, a port from 1 to 65535, no spaces or control characters.
    std::string rest = url.substr(7);
    std::string authority = rest.substr(0, rest.find('/'));
    size_t colon = authority.rfind(':');
    bool bracketed = authority.find(']') != std::string::npos;
    std::string host =
        colon == std::string::npos || bracketed ? authority : authority.substr(0, colon);
    std::string port = colon == std::string::npos || bracketed ? "80" : authority.substr(colon + 1);
    bool ok = !host.empty() && !port.empty() && port.size() <= 5 &&
              port.find_first_not_of("0123456789") == std::string::npos && std::stoi(port) >= 1 &&
              std::stoi(port) <= 65535;
    for (unsigned char ch : url) ok = ok && ch > 0x20 && ch != 0x7f;
    if (!ok) {
      return InvalidArgumentError(fmt::format(
          "{}: 'webhook_url' must be http://host[:port][/path] with a port from 1 to 65535 and "
          "no spaces or control characters",
          where));
    }
  }
  return Status::Ok();
}

Result<ColumnSpec> ParseColumn(const toml::table& t, const std::string& where) {
  ENGAGE_RETURN_IF_ERROR(CheckKeys(t,
                                   {"name", "type", "required", "source", "expr", "min", "max",
                                    "allowed", "max_length", "format"},
                                   where));
  ColumnSpec c;
  auto name = Get<std::string>(t, "name");
  if (!name || !IsValidIdentifier(*name)) {
    return InvalidArgumentError(
        fmt::format("{}: 'name' is missing or not a valid identifier ([a-z_][a-z0-9_]*)", where));
  }
  c.name = *name;
  std::string w = fmt::format("{} '{}'", where, c.name);
  auto type = ParseType(Get<std::string>(t, "type").value_or("string"));
  if (!type.ok()) return type.status().WithContext(w);
  c.type = *type;
  c.required = Get<bool>(t, "required").value_or(false);
  c.source = Get<std::string>(t, "source").value_or(c.name);
  c.expr = Get<std::string>(t, "expr").value_or("");
  if (auto v = t["min"].value<double>()) c.min = *v;
  if (auto v = t["max"].value<double>()) c.max = *v;
  if (auto v = t["max_length"].value<int64_t>()) c.max_length = *v;
  c.format = Get<std::string>(t, "format").value_or("");
  if (const toml::array* arr = t["allowed"].as_array()) {
    for (const auto& e : *arr) {
      auto s = e.value<std::string>();
      if (!s) return InvalidArgumentError(fmt::format("{}: 'allowed' must hold strings", w));
      c.allowed.push_back(*s);
    }
  }
  return c;
}

// One [[tables.T.checks]] entry of `spec` (its columns already parsed).
Result<CheckSpec> ParseCheck(const toml::table& t, const TableSpec& spec,
                             const std::string& where) {
  ENGAGE_RETURN_IF_ERROR(CheckKeys(
      t,
      {"type", "name", "column", "columns", "severity", "min", "max", "values", "pattern",
       "max_age_hours", "max_change_percent", "sql", "where", "days", "max_reject_percent"},
      where));
  static const std::map<std::string, CheckKind> kKinds = {
      {"not_null", CheckKind::kNotNull},
      {"unique", CheckKind::kUnique},
      {"range", CheckKind::kRange},
      {"allowed", CheckKind::kAllowed},
      {"regex", CheckKind::kRegex},
      {"freshness", CheckKind::kFreshness},
      {"row_count_change", CheckKind::kRowCountChange},
      {"sql", CheckKind::kSql},
      {"row_count", CheckKind::kRowCount},
      {"history_days", CheckKind::kHistoryDays},
      {"volume_change", CheckKind::kVolumeChange},
      {"ingest_rejects", CheckKind::kIngestRejects}};
  std::string type = Get<std::string>(t, "type").value_or("");
  auto kind = kKinds.find(type);
  if (kind == kKinds.end()) {
    return InvalidArgumentError(
        fmt::format("{}: 'type' must be one of not_null, unique, range, allowed, regex, freshness, "
                    "row_count_change, sql, row_count, history_days, volume_change, "
                    "ingest_rejects (got '{}')",
                    where, type));
  }
  CheckSpec c;
  c.kind = kind->second;
  auto strings = [&](const char* key, std::vector<std::string>* out) -> Status {
    if (const toml::array* arr = t[key].as_array()) {
      for (const auto& e : *arr) {
        auto s = e.value<std::string>();
        if (!s) return InvalidArgumentError(fmt::format("{}: '{}' must hold strings", where, key));
        out->push_back(*s);
      }
    } else if (t.contains(key)) {
      return InvalidArgumentError(fmt::format("{}: '{}' must be a list of strings", where, key));
    }
    return Status::Ok();
  };
  if (auto col = Get<std::string>(t, "column")) c.columns.push_back(*col);
  ENGAGE_RETURN_IF_ERROR(strings("columns", &c.columns));
  ENGAGE_RETURN_IF_ERROR(strings("values", &c.values));
  for (const auto& col : c.columns) {
    if (!spec.FindColumn(col) && col != "dt") {
      return InvalidArgumentError(fmt::format("{}: unknown column '{}'", where, col));
    }
  }
  const bool on_columns = c.kind == CheckKind::kNotNull || c.kind == CheckKind::kUnique ||
                          c.kind == CheckKind::kRange || c.kind == CheckKind::kAllowed ||
                          c.kind == CheckKind::kRegex;
  if (on_columns && c.columns.empty()) {
    return InvalidArgumentError(
        fmt::format("{}: a {} check needs 'column' or 'columns'", where, type));
  }
  if (!on_columns && !c.columns.empty()) {
    return InvalidArgumentError(fmt::format("{}: a {} check takes no columns", where, type));
  }
  const bool one_column =
      c.kind == CheckKind::kRange || c.kind == CheckKind::kAllowed || c.kind == CheckKind::kRegex;
  if (one_column && c.columns.size() != 1) {
    return InvalidArgumentError(fmt::format("{}: a {} check is on one column", where, type));
  }
  if (auto v = t["min"].value<double>()) c.min = *v;
  if (auto v = t["max"].value<double>()) c.max = *v;
  c.pattern = Get<std::string>(t, "pattern").value_or("");
  c.max_age_hours = t["max_age_hours"].value<double>().value_or(0);
  c.max_change_percent = t["max_change_percent"].value<double>().value_or(0);
  c.sql = Get<std::string>(t, "sql").value_or("");
  c.where = Get<std::string>(t, "where").value_or("");
  c.days = t["days"].value<int64_t>().value_or(c.days);
  c.max_reject_percent = t["max_reject_percent"].value<double>().value_or(0);
  auto need = [&](bool ok, const char* what) -> Status {
    return ok ? Status::Ok()
              : InvalidArgumentError(fmt::format("{}: a {} check needs {}", where, type, what));
  };
  for (double v : {c.min.value_or(0), c.max.value_or(0), c.max_age_hours, c.max_change_percent,
                   c.max_reject_percent}) {
    if (!std::isfinite(v)) {
      return InvalidArgumentError(fmt::format("{}: numbers must be finite (no nan or inf)", where));
    }
  }
  switch (c.kind) {
    case CheckKind::kRange:
      ENGAGE_RETURN_IF_ERROR(need(c.min || c.max, "'min' or 'max'"));
      ENGAGE_RETURN_IF_ERROR(need(!c.min || !c.max || *c.min <= *c.max, "'min' <= 'max'"));
      break;
    case CheckKind::kAllowed:
      ENGAGE_RETURN_IF_ERROR(need(!c.values.empty(), "'values'"));
      break;
    case CheckKind::kRegex:
      ENGAGE_RETURN_IF_ERROR(need(!c.pattern.empty(), "'pattern'"));
      break;
    case CheckKind::kFreshness:
      ENGAGE_RETURN_IF_ERROR(need(c.max_age_hours > 0, "'max_age_hours' above 0"));
      ENGAGE_RETURN_IF_ERROR(need(!spec.time_column.empty(), "a table with a time_column"));
      break;
    case CheckKind::kRowCountChange:
      ENGAGE_RETURN_IF_ERROR(need(c.max_change_percent > 0, "'max_change_percent' above 0"));
      break;
    case CheckKind::kSql:
      ENGAGE_RETURN_IF_ERROR(need(!c.sql.empty(), "'sql' (a SELECT returning the failing rows)"));
      break;
    case CheckKind::kRowCount:
      ENGAGE_RETURN_IF_ERROR(need(c.min || c.max, "'min' or 'max'"));
      ENGAGE_RETURN_IF_ERROR(need(!c.min || !c.max || *c.min <= *c.max, "'min' <= 'max'"));
      break;
    case CheckKind::kHistoryDays:
      ENGAGE_RETURN_IF_ERROR(need(c.min && *c.min > 0, "'min' days above 0"));
      ENGAGE_RETURN_IF_ERROR(need(!spec.time_column.empty(), "a table with a time_column"));
      break;
    case CheckKind::kVolumeChange:
      ENGAGE_RETURN_IF_ERROR(need(c.max_change_percent > 0, "'max_change_percent' above 0"));
      ENGAGE_RETURN_IF_ERROR(need(c.days >= 1 && c.days <= 3660, "'days' from 1 to 3660"));
      ENGAGE_RETURN_IF_ERROR(need(!spec.time_column.empty(), "a table with a time_column"));
      break;
    case CheckKind::kIngestRejects:
      ENGAGE_RETURN_IF_ERROR(need(c.max_reject_percent >= 0 && c.max_reject_percent <= 100,
                                  "'max_reject_percent' from 0 to 100"));
      break;
    default:
      break;
  }
  std::string severity = Get<std::string>(t, "severity").value_or("error");
  if (severity != "error" && severity != "warning") {
    return InvalidArgumentError(
        fmt::format("{}: 'severity' must be \"error\" or \"warning\" (got '{}')", where, severity));
  }
  c.error = severity == "error";
  c.name = Get<std::string>(t, "name").value_or(type);
  if (!t.contains("name")) {
    for (const auto& col : c.columns) c.name += "_" + col;
  }
  if (!IsValidIdentifier(c.name)) {
    return InvalidArgumentError(fmt::format(
        "{}: 'name' must be an identifier ([a-z_][a-z0-9_]*), got '{}'", where, c.name));
  }
  return c;
}

Result<TableSpec> ParseTable(const std::string& name, const toml::table& t,
                             const std::string& origin) {
  std::string where = fmt::format("{}: table '{}'", origin, name);
  if (!IsValidIdentifier(name)) {
    return InvalidArgumentError(fmt::format("{}: not a valid table name", where));
  }
  ENGAGE_RETURN_IF_ERROR(
      CheckKeys(t,
                {"columns", "time_column", "primary_key", "retention_days",
                 "require_partition_filter", "min_time", "max_future_days", "csv", "checks"},
                where));
  TableSpec spec;
  spec.name = name;
  const toml::array* cols = t["columns"].as_array();
  if (!cols || cols->empty()) {
    return InvalidArgumentError(fmt::format("{}: needs at least one [[columns]] entry", where));
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < cols->size(); ++i) {
    const toml::table* ct = (*cols)[i].as_table();
    std::string cw = fmt::format("{} column #{}", where, i + 1);
    if (!ct) return InvalidArgumentError(cw + ": must be a table");
    ENGAGE_ASSIGN_OR_RETURN(ColumnSpec c, ParseColumn(*ct, cw));
    if (!seen.insert(c.name).second || c.name == "dt") {
      return InvalidArgumentError(
          fmt::format("{}: column '{}' is defined twice or is the "
                      "reserved partition column 'dt'",
                      where, c.name));
    }
    spec.columns.push_back(std::move(c));
  }
  spec.time_column = Get<std::string>(t, "time_column").value_or("");
  const ColumnSpec* tc = spec.FindColumn(spec.time_column);
  if (!spec.time_column.empty() &&
      (!tc || (tc->type != ColumnType::kTimestamp && tc->type != ColumnType::kDate))) {
    return InvalidArgumentError(fmt::format(
        "{}: 'time_column' must name a timestamp or date column (partitions are by its date; "
        "leave it out for snapshot tables, partitioned by load date)",
        where));
  }
  if (const toml::array* pk = t["primary_key"].as_array()) {
    for (const auto& e : *pk) {
      auto s = e.value<std::string>();
      if (!s || !spec.FindColumn(*s)) {
        return InvalidArgumentError(fmt::format("{}: primary_key names an unknown column", where));
      }
      spec.primary_key.push_back(*s);
    }
  }
  spec.retention_days = static_cast<int>(Get<int64_t>(t, "retention_days").value_or(90));
  if (spec.retention_days < 0) {
    return InvalidArgumentError(fmt::format("{}: retention_days must be >= 0", where));
  }
  spec.require_partition_filter = Get<bool>(t, "require_partition_filter").value_or(false);
  spec.min_time = Get<std::string>(t, "min_time").value_or(spec.min_time);
  spec.max_future_days = static_cast<int>(Get<int64_t>(t, "max_future_days").value_or(2));
  if (const toml::table* csv = t["csv"].as_table()) {
    ENGAGE_RETURN_IF_ERROR(
        CheckKeys(*csv, {"delimiter", "header", "quote", "max_line_bytes"}, where + " [csv]"));
    spec.csv.delimiter = Get<std::string>(*csv, "delimiter").value_or(",");
    spec.csv.header = Get<bool>(*csv, "header").value_or(true);
    spec.csv.quote = Get<std::string>(*csv, "quote").value_or("\"");
    spec.csv.max_line_bytes = Get<int64_t>(*csv, "max_line_bytes").value_or(2 * 1024 * 1024);
    if (spec.csv.delimiter != "whitespace" && spec.csv.delimiter.size() != 1) {
      return InvalidArgumentError(
          fmt::format("{} [csv]: delimiter must be one character or \"whitespace\"", where));
    }
  }
  if (t.contains("checks") && !t["checks"].as_array()) {
    return InvalidArgumentError(
        fmt::format("{}: 'checks' must be [[tables.{}.checks]] entries", where, name));
  }
  if (const toml::array* checks = t["checks"].as_array()) {
    std::set<std::string> names;
    for (size_t i = 0; i < checks->size(); ++i) {
      std::string cw = fmt::format("{} check #{}", where, i + 1);
      const toml::table* ct = (*checks)[i].as_table();
      if (!ct) return InvalidArgumentError(cw + ": must be a table");
      ENGAGE_ASSIGN_OR_RETURN(CheckSpec c, ParseCheck(*ct, spec, cw));
      if (!names.insert(c.name).second) {
        return InvalidArgumentError(fmt::format(
            "{}: another check of the table is named '{}' (give one a 'name')", cw, c.name));
      }
      spec.checks.push_back(std::move(c));
    }
  }
  return spec;
}

}  // namespace

std::string_view CheckKindName(CheckKind kind) {
  switch (kind) {
    case CheckKind::kNotNull:
      return "not_null";
    case CheckKind::kUnique:
      return "unique";
    case CheckKind::kRange:
      return "range";
    case CheckKind::kAllowed:
      return "allowed";
    case CheckKind::kRegex:
      return "regex";
    case CheckKind::kFreshness:
      return "freshness";
    case CheckKind::kRowCountChange:
      return "row_count_change";
    case CheckKind::kSql:
      return "sql";
    case CheckKind::kRowCount:
      return "row_count";
    case CheckKind::kHistoryDays:
      return "history_days";
    case CheckKind::kVolumeChange:
      return "volume_change";
    case CheckKind::kIngestRejects:
      return "ingest_rejects";
  }
  return "not_null";
}

std::string_view ColumnTypeName(ColumnType t) {
  switch (t) {
    case ColumnType::kString:
      return "string";
    case ColumnType::kInt64:
      return "int64";
    case ColumnType::kDouble:
      return "double";
    case ColumnType::kBool:
      return "bool";
    case ColumnType::kTimestamp:
      return "timestamp";
    case ColumnType::kDate:
      return "date";
  }
  return "string";
}

std::string_view ColumnTypeSql(ColumnType t) {
  switch (t) {
    case ColumnType::kString:
      return "VARCHAR";
    case ColumnType::kInt64:
      return "BIGINT";
    case ColumnType::kDouble:
      return "DOUBLE";
    case ColumnType::kBool:
      return "BOOLEAN";
    case ColumnType::kTimestamp:
      return "TIMESTAMP";
    case ColumnType::kDate:
      return "DATE";
  }
  return "VARCHAR";
}

bool IsValidIdentifier(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  if (!(std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  for (char c : name) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '_')) {
      return false;
    }
  }
  return true;
}

const ColumnSpec* TableSpec::FindColumn(const std::string& col) const {
  for (const auto& c : columns) {
    if (c.name == col) return &c;
  }
  return nullptr;
}

Result<const TableSpec*> Config::Table(const std::string& name) const {
  auto it = tables.find(name);
  if (it == tables.end()) {
    std::string known;
    for (const auto& [n, t] : tables) known += (known.empty() ? "" : ", ") + n;
    return NotFoundError(fmt::format("unknown table '{}' (defined in engage.toml: {})", name,
                                     known.empty() ? "none" : known));
  }
  return &it->second;
}

namespace {

Status ParseFlowCommands(const toml::table& t, const std::string& where,
                         std::map<std::string, FlowCommand>* out) {
  for (const auto& [k, v] : t) {
    std::string name(k.str());
    std::string w = fmt::format("{}.\"{}\"", where, name);
    const toml::table* ct = v.as_table();
    if (!ct) return InvalidArgumentError(fmt::format("{} must be a table", w));
    ENGAGE_RETURN_IF_ERROR(CheckKeys(*ct, {"command", "timeout_seconds"}, w));
    FlowCommand cmd;
    const toml::array* arr = (*ct)["command"].as_array();
    if (!arr || arr->empty()) {
      return InvalidArgumentError(
          fmt::format("{}: 'command' must be a non-empty array of strings", w));
    }
    for (const auto& item : *arr) {
      auto s = item.value<std::string>();
      if (!s) return InvalidArgumentError(fmt::format("{}: 'command' must hold strings", w));
      cmd.command.push_back(*s);
    }
    if (auto ts = (*ct)["timeout_seconds"]; ts) {
      auto n = ts.value<int64_t>();
      if (!n || *n < 0 || !ts.is_integer()) {
        return InvalidArgumentError(
            fmt::format("{}: 'timeout_seconds' must be a non-negative integer", w));
      }
      cmd.timeout_seconds = *n;
    }
    out->emplace(name, std::move(cmd));
  }
  return Status::Ok();
}

Result<std::vector<std::string>> StringList(const toml::table& t, const char* key,
                                            const std::string& where);

Status ParseFlow(const toml::table& f, const std::string& o, FlowConfig* flow) {
  std::string w = o + " [flow]";
  ENGAGE_RETURN_IF_ERROR(
      CheckKeys(f,
                {"region", "account", "lambda", "ecs", "buckets", "input_dirs",
                 "max_history_events", "max_execution_seconds", "max_payload_bytes"},
                w));
  if (f.contains("input_dirs")) {
    ENGAGE_ASSIGN_OR_RETURN(flow->input_dirs, StringList(f, "input_dirs", w));
    for (const std::string& d : flow->input_dirs) {
      if (d.empty()) return InvalidArgumentError(w + ": 'input_dirs' holds an empty path");
    }
  }
  // The execution limits: positive integers, bounded so that converting them to microseconds or
  // adding them to an event id cannot overflow.
  struct Limit {
    const char* key;
    int64_t max;
    int64_t* out;
  };
  for (const Limit& l :
       {Limit{"max_history_events", int64_t{1} << 40, &flow->max_history_events},
        Limit{"max_execution_seconds", int64_t{100} * 31536000, &flow->max_execution_seconds},
        Limit{"max_payload_bytes", int64_t{1} << 40, &flow->max_payload_bytes}}) {
    if (!f.contains(l.key)) continue;
    auto n = f[l.key].value<int64_t>();
    if (!f[l.key].is_integer() || !n || *n < 1 || *n > l.max) {
      return InvalidArgumentError(
          fmt::format("{}: '{}' must be an integer from 1 to {}", w, l.key, l.max));
    }
    *l.out = *n;
  }
  if (f.contains("buckets")) {
    const toml::table* b = f["buckets"].as_table();
    if (!b) return InvalidArgumentError(w + ": 'buckets' must be a table of name = \"directory\"");
    for (const auto& [k, v] : *b) {
      auto dir = v.value<std::string>();
      if (!v.is_string() || !dir || dir->empty()) {
        return InvalidArgumentError(
            fmt::format("{} flow.buckets.\"{}\": must be a directory path string", o, k.str()));
      }
      if (k.str() == "lake") {
        return InvalidArgumentError(
            fmt::format("{} flow.buckets: 'lake' is reserved for the home's lake (read-only)", o));
      }
      flow->buckets.emplace(std::string(k.str()), *dir);
    }
  }
  if (auto r = f["region"].value<std::string>()) flow->region = *r;
  if (auto a = f["account"].value<std::string>()) flow->account = *a;
  if (f.contains("region") && !f["region"].is_string()) {
    return InvalidArgumentError(w + ": 'region' must be a string");
  }
  if (f.contains("account") && !f["account"].is_string()) {
    return InvalidArgumentError(w + ": 'account' must be a string");
  }
  for (const char* kind : {"lambda", "ecs"}) {
    if (!f.contains(kind)) continue;
    const toml::table* t = f[kind].as_table();
    if (!t) return InvalidArgumentError(fmt::format("{}: '{}' must be a table", w, kind));
    ENGAGE_RETURN_IF_ERROR(ParseFlowCommands(*t, fmt::format("{} flow.{}", o, kind),
                                             kind[0] == 'l' ? &flow->lambda : &flow->ecs));
  }
  return Status::Ok();
}

Result<std::vector<std::string>> StringList(const toml::table& t, const char* key,
                                            const std::string& where) {
  std::vector<std::string> out;
  const toml::array* arr = t[key].as_array();
  if (!arr)
    return InvalidArgumentError(fmt::format("{}: '{}' must be an array of strings", where, key));
  for (const auto& item : *arr) {
    auto v = item.value<std::string>();
    if (!item.is_string() || !v) {
      return InvalidArgumentError(fmt::format("{}: '{}' must be an array of strings", where, key));
    }
    out.push_back(*v);
  }
  return out;
}

Status ParseEngagement(const toml::table& e, const std::string& o, EngagementConfig* cfg) {
  std::string w = o + " [engagement]";
  static const std::set<std::string> kStrings = {
      "events_table", "customers_table", "customer_column", "time_column",
      "type_column",  "channel_column",  "amount_column",   "signup_column"};
  static const std::set<std::string> kInts = {"horizon_days", "lookback_days", "training_cutoffs",
                                              "cutoff_step_days"};
  static const std::set<std::string> kLists = {"qualifying_types", "event_types", "channels",
                                               "segment_names"};
  for (const auto& [k, v] : e) {
    std::string key(k.str());
    if (kStrings.count(key)) {
      if (!v.is_string())
        return InvalidArgumentError(fmt::format("{}: '{}' must be a string", w, key));
      std::string s = *v.value<std::string>();
      if (key == "events_table") cfg->events_table = s;
      if (key == "customers_table") cfg->customers_table = s;
      if (key == "customer_column") cfg->customer_column = s;
      if (key == "time_column") cfg->time_column = s;
      if (key == "type_column") cfg->type_column = s;
      if (key == "channel_column") cfg->channel_column = s;
      if (key == "amount_column") cfg->amount_column = s;
      if (key == "signup_column") cfg->signup_column = s;
    } else if (kInts.count(key)) {
      auto n = v.value<int64_t>();
      if (!v.is_integer() || !n || *n < 1 || *n > 100000) {
        return InvalidArgumentError(
            fmt::format("{}: '{}' must be an integer from 1 to 100000", w, key));
      }
      int i = static_cast<int>(*n);
      if (key == "horizon_days") cfg->horizon_days = i;
      if (key == "lookback_days") cfg->lookback_days = i;
      if (key == "training_cutoffs") cfg->training_cutoffs = i;
      if (key == "cutoff_step_days") cfg->cutoff_step_days = i;
    } else if (kLists.count(key)) {
      ENGAGE_ASSIGN_OR_RETURN(auto list, StringList(e, key.c_str(), w));
      if (key == "qualifying_types") cfg->qualifying_types = list;
      if (key == "event_types") cfg->event_types = list;
      if (key == "channels") cfg->channels = list;
      if (key == "segment_names") cfg->segment_names = list;
    } else if (key == "segment_thresholds") {
      const toml::array* arr = v.as_array();
      cfg->segment_thresholds.clear();
      for (size_t i = 0; arr && i < arr->size(); ++i) {
        auto x = (*arr)[i].value<double>();
        if (!(*arr)[i].is_number() || !x || *x < 0 || *x > 1 ||
            (!cfg->segment_thresholds.empty() && *x >= cfg->segment_thresholds.back())) {
          arr = nullptr;
        }
        if (arr) cfg->segment_thresholds.push_back(*x);
      }
      if (!arr) {
        return InvalidArgumentError(
            w + ": 'segment_thresholds' must be numbers in [0, 1], in descending order");
      }
    } else if (key == "windows_days") {
      const toml::array* arr = v.as_array();
      cfg->windows_days.clear();
      for (size_t i = 0; arr && i < arr->size(); ++i) {
        auto n = (*arr)[i].value<int64_t>();
        if (!(*arr)[i].is_integer() || !n || *n < 1 || *n > 100000) arr = nullptr;
        if (arr) cfg->windows_days.push_back(static_cast<int>(*n));
      }
      if (!arr || cfg->windows_days.empty()) {
        return InvalidArgumentError(
            w + ": 'windows_days' must be a non-empty array of integers from 1 to 100000");
      }
    } else if (key == "features") {
      const toml::array* arr = v.as_array();
      if (!arr) return InvalidArgumentError(w + ": 'features' must be an array of tables");
      for (size_t i = 0; i < arr->size(); ++i) {
        std::string fw = fmt::format("{} [[engagement.features]] #{}", o, i + 1);
        const toml::table* ft = (*arr)[i].as_table();
        if (!ft) return InvalidArgumentError(fw + ": must be a table with name and sql");
        ENGAGE_RETURN_IF_ERROR(CheckKeys(*ft, {"name", "sql"}, fw));
        SqlFeature f;
        f.name = Get<std::string>(*ft, "name").value_or("");
        f.sql = Get<std::string>(*ft, "sql").value_or("");
        if (!IsValidIdentifier(f.name)) {
          return InvalidArgumentError(fw + ": 'name' must match [a-z_][a-z0-9_]{0,62}");
        }
        if (f.sql.find("{events}") == std::string::npos) {
          return InvalidArgumentError(
              fw + ": 'sql' must read events through {events} (the events before the cutoff)");
        }
        cfg->sql_features.push_back(std::move(f));
      }
    } else {
      return InvalidArgumentError(fmt::format("{}: unknown key '{}'", w, key));
    }
  }
  if (cfg->segment_names.size() != cfg->segment_thresholds.size() + 1) {
    return InvalidArgumentError(fmt::format(
        "{}: 'segment_names' needs one name more than 'segment_thresholds' ({} names, {} "
        "thresholds)",
        w, cfg->segment_names.size(), cfg->segment_thresholds.size()));
  }
  if (cfg->qualifying_types.empty()) {
    return InvalidArgumentError(w + ": 'qualifying_types' must name at least one event type");
  }
  return Status::Ok();
}

// [drift]: every threshold a finite number in its range.
Status ParseDrift(const toml::table& d, const std::string& origin, DriftConfig* out) {
  const std::string w = origin + " [drift]";
  ENGAGE_RETURN_IF_ERROR(CheckKeys(d, {"psi", "p_value", "min_effect", "dataset_share"}, w));
  struct Key {
    const char* name;
    double* value;
    double lo, hi;
    bool lo_open;  // the value must be above `lo`, not equal to it
    const char* range;
  };
  const Key keys[] = {
      {"psi", &out->psi, 0, 1e9, true, "a number above 0"},
      {"p_value", &out->p_value, 0, 1, true, "a number above 0 and at most 1"},
      {"min_effect", &out->min_effect, 0, 1, false, "a number from 0 to 1"},
      {"dataset_share", &out->dataset_share, 0, 1, true, "a number above 0 and at most 1"},
  };
  for (const Key& k : keys) {
    if (!d.contains(k.name)) continue;
    std::optional<double> v = d[k.name].value<double>();
    if (!d[k.name].is_number() || !v || !std::isfinite(*v) || *v > k.hi ||
        (k.lo_open ? *v <= k.lo : *v < k.lo)) {
      return InvalidArgumentError(
          fmt::format("{}: '{}' must be {}, got {}", w, k.name, k.range,
                      d[k.name].is_number()
                          ? fmt::format("{}", v.value_or(0))
                          : std::string(d[k.name].is_string() ? "a string" : "another type")));
    }
    *k.value = *v;
  }
  return Status::Ok();
}

}  // namespace

Result<Config> Config::Parse(std::string_view text, std::string_view origin) {
  toml::table root;
  try {
    root = toml::parse(text, origin);
  } catch (const toml::parse_error& err) {
    return InvalidArgumentError(fmt::format("{}:{}:{}: {}", origin, err.source().begin.line,
                                            err.source().begin.column, err.description()));
  }
  std::string o(origin);
  ENGAGE_RETURN_IF_ERROR(CheckKeys(
      root, {"tables", "prices", "alerts", "query", "flow", "engagement", "models", "drift"}, o));
  Config cfg;
  if (const toml::table* d = root["drift"].as_table()) {
    ENGAGE_RETURN_IF_ERROR(ParseDrift(*d, o, &cfg.drift));
  } else if (root.contains("drift")) {
    return InvalidArgumentError(o + ": [drift] must be a table");
  }
  if (const toml::table* m = root["models"].as_table()) {
    std::string w = o + " [models]";
    ENGAGE_RETURN_IF_ERROR(
        CheckKeys(*m, {"promotion_metric", "min_quality", "min_improvement", "health_min_auc"}, w));
    for (const char* key : {"min_quality", "min_improvement", "health_min_auc"}) {
      if (m->contains(key) && !(*m)[key].is_number()) {
        return InvalidArgumentError(fmt::format("{}: '{}' must be a number", w, key));
      }
    }
    if (m->contains("promotion_metric") && !(*m)["promotion_metric"].is_string()) {
      return InvalidArgumentError(w + ": 'promotion_metric' must be a string");
    }
    cfg.models.promotion_metric =
        Get<std::string>(*m, "promotion_metric").value_or(cfg.models.promotion_metric);
    cfg.models.min_quality = Get<double>(*m, "min_quality").value_or(cfg.models.min_quality);
    cfg.models.min_improvement =
        Get<double>(*m, "min_improvement").value_or(cfg.models.min_improvement);
    cfg.models.health_min_auc =
        Get<double>(*m, "health_min_auc").value_or(cfg.models.health_min_auc);
    // NaN fails both comparisons.
    if (!(cfg.models.health_min_auc >= 0 && cfg.models.health_min_auc <= 1)) {
      return InvalidArgumentError(
          fmt::format("{}: 'health_min_auc' must be a finite number from 0 to 1, got {}", w,
                      cfg.models.health_min_auc));
    }
    static const std::set<std::string> kMetrics = {"auc", "pr_auc"};
    if (!kMetrics.count(cfg.models.promotion_metric)) {
      return InvalidArgumentError(w + ": 'promotion_metric' must be auc or pr_auc");
    }
  }
  if (const toml::table* e = root["engagement"].as_table()) {
    ENGAGE_RETURN_IF_ERROR(ParseEngagement(*e, o, &cfg.engagement));
  } else if (root.contains("engagement")) {
    return InvalidArgumentError(o + ": [engagement] must be a table");
  }
  if (const toml::table* f = root["flow"].as_table()) {
    ENGAGE_RETURN_IF_ERROR(ParseFlow(*f, o, &cfg.flow));
  }
  if (const toml::table* p = root["prices"].as_table()) {
    ENGAGE_RETURN_IF_ERROR(ParsePrices(*p, o + " [prices]", &cfg.prices));
  } else if (root.contains("prices")) {
    return InvalidArgumentError(o + ": [prices] must be a table");
  }
  if (const toml::table* a = root["alerts"].as_table()) {
    ENGAGE_RETURN_IF_ERROR(ParseAlerts(*a, o + " [alerts]", &cfg.alerts));
  } else if (root.contains("alerts")) {
    return InvalidArgumentError(o + ": [alerts] must be a table");
  }
  if (const toml::table* q = root["query"].as_table()) {
    ENGAGE_RETURN_IF_ERROR(
        CheckKeys(*q, {"max_scan_bytes", "max_result_rows", "timeout_seconds", "memory_limit"},
                  o + " [query]"));
    cfg.query.max_scan_bytes = Get<int64_t>(*q, "max_scan_bytes").value_or(0);
    cfg.query.max_result_rows = Get<int64_t>(*q, "max_result_rows").value_or(100000);
    if (cfg.query.max_scan_bytes < 0) {
      return InvalidArgumentError(
          fmt::format("{} [query] max_scan_bytes must be 0 (no cutoff) or more, got {}", o,
                      cfg.query.max_scan_bytes));
    }
    if (cfg.query.max_result_rows < 1) {
      return InvalidArgumentError(fmt::format(
          "{} [query] max_result_rows must be at least 1, got {}", o, cfg.query.max_result_rows));
    }
    cfg.query.timeout_seconds = Get<int64_t>(*q, "timeout_seconds");
    if (cfg.query.timeout_seconds &&
        (*cfg.query.timeout_seconds < 0 || *cfg.query.timeout_seconds > 31'536'000)) {
      return InvalidArgumentError(fmt::format(
          "{} [query] timeout_seconds must be from 0 (no limit) to 31536000 (a year), got {}", o,
          *cfg.query.timeout_seconds));
    }
    cfg.query.memory_limit = Get<std::string>(*q, "memory_limit").value_or(cfg.query.memory_limit);
    if (!IsMemorySize(cfg.query.memory_limit)) {
      return InvalidArgumentError(fmt::format(
          "{} [query] memory_limit must be a size such as \"4GB\" or \"512MB\", got \"{}\"", o,
          cfg.query.memory_limit));
    }
  }
  if (const toml::table* tables = root["tables"].as_table()) {
    for (const auto& [k, v] : *tables) {
      std::string name(k.str());
      const toml::table* tt = v.as_table();
      if (!tt) return InvalidArgumentError(fmt::format("{}: tables.{} must be a table", o, name));
      ENGAGE_ASSIGN_OR_RETURN(TableSpec spec, ParseTable(name, *tt, o));
      cfg.tables.emplace(name, std::move(spec));
    }
  }
  if (!cfg.tables.count("predictions")) {
    // The customer id keeps its type from the events (or customers) table, so predictions join
    // them without a cast.
    ColumnType id_type = ColumnType::kString;
    for (const std::string& t : {cfg.engagement.events_table, cfg.engagement.customers_table}) {
      auto spec = cfg.tables.find(t);
      const ColumnSpec* c = spec == cfg.tables.end()
                                ? nullptr
                                : spec->second.FindColumn(cfg.engagement.customer_column);
      if (c != nullptr) {
        id_type = c->type;
        break;
      }
    }
    cfg.tables.emplace("predictions", PredictionsTableSpec(id_type));
  }
  return cfg;
}

Result<Config> Config::Load(const std::string& path) {
  auto text = PosixFileSystem().ReadFile(path);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) {
      return NotFoundError(
          fmt::format("no config at '{}': run `engage init` to create a home", path));
    }
    return text.status();
  }
  return Parse(*text, path);
}

TableSpec PredictionsTableSpec(ColumnType customer_id_type) {
  TableSpec t;
  t.name = "predictions";
  t.time_column = "scored_at";
  t.retention_days = 400;
  auto col = [&t](const char* name, ColumnType type, bool required = false) {
    ColumnSpec c;
    c.name = name;
    c.source = name;
    c.type = type;
    c.required = required;
    t.columns.push_back(c);
  };
  col("customer_id", customer_id_type, true);
  col("scored_at", ColumnType::kTimestamp, true);
  col("cutoff", ColumnType::kDate, true);
  col("score", ColumnType::kDouble, true);
  col("segment", ColumnType::kString, true);
  col("p_alive", ColumnType::kDouble);
  col("expected_transactions", ColumnType::kDouble);
  col("clv", ColumnType::kDouble);
  col("reasons", ColumnType::kString);
  col("model", ColumnType::kString, true);
  col("model_version", ColumnType::kInt64, true);
  return t;
}

double CostUsd(const Prices& prices, int64_t bytes_scanned) {
  constexpr int64_t kMb = 1000 * 1000;
  int64_t billed = std::max(bytes_scanned, prices.min_bytes_per_query);
  billed = (billed + kMb - 1) / kMb * kMb;
  return static_cast<double>(billed) / std::pow(2.0, 40) * prices.scan_usd_per_tb;
}

namespace {

// The days of events training needs: the label horizon, the earlier cutoffs, and a month of
// features before the first.
int64_t TrainingHistoryDays(const EngagementConfig& e) {
  return e.horizon_days + static_cast<int64_t>(e.cutoff_step_days) * (e.training_cutoffs - 1) + 30;
}

std::string QualifyingWhere(const EngagementConfig& e) {
  std::string types;
  for (const auto& q : e.qualifying_types) {
    std::string quoted = "'";
    for (char ch : q) quoted += ch == '\'' ? std::string("''") : std::string(1, ch);
    types += (types.empty() ? "" : ", ") + quoted + "'";
  }
  std::string column = "\"";
  for (char ch : e.type_column) column += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return column + "\" IN (" + types + ")";
}

}  // namespace

std::vector<CheckSpec> DefaultEngagementChecks(const EngagementConfig& e) {
  std::vector<CheckSpec> out;
  CheckSpec present{.name = "events_present", .kind = CheckKind::kRowCount, .min = 1};
  out.push_back(present);
  CheckSpec qualifying{.name = "qualifying_events", .kind = CheckKind::kRowCount, .min = 1};
  qualifying.where = QualifyingWhere(e);
  out.push_back(qualifying);
  CheckSpec history{.name = "history_days",
                    .kind = CheckKind::kHistoryDays,
                    .min = static_cast<double>(TrainingHistoryDays(e))};
  out.push_back(history);
  CheckSpec volume{.name = "volume_last_7_days",
                   .kind = CheckKind::kVolumeChange,
                   .max_change_percent = 50,
                   .error = false};
  volume.days = 7;
  out.push_back(volume);
  CheckSpec rejects{
      .name = "latest_ingest_rejects", .kind = CheckKind::kIngestRejects, .error = false};
  rejects.max_reject_percent = 1;
  out.push_back(rejects);
  return out;
}

std::string DefaultConfigToml() {
  return R"(# Engage configuration. Edit and re-run commands; `engage tables` shows the result.

[prices]
# What the same work would cost on AWS (us-east-1 list prices; docs/monitor.md gives sources).
# `engage cost` reports the ledger priced with these.
# Query scans are priced like Amazon Athena: USD per TB (2^40 bytes) scanned,
# each query billed at least min_bytes_per_query, rounded up to a whole MB.
scan_usd_per_tb = 5.0
min_bytes_per_query = 10000000
state_transition_usd = 0.000025      # Step Functions standard workflows
fargate_vcpu_hour_usd = 0.04048      # training and scoring run as Fargate tasks
fargate_gb_hour_usd = 0.004445
fargate_min_seconds = 60
lambda_request_usd = 0.0000002       # other steps and server requests run as Lambda functions
lambda_gb_second_usd = 0.0000166667
lambda_memory_gb = 1.0
dynamodb_read_usd = 0.000000125      # prediction lookups (on-demand read request unit)
dynamodb_write_usd = 0.000000625     # published predictions (on-demand write request unit)
s3_gb_month_usd = 0.023              # the lake's storage (S3 Standard)
s3_put_usd = 0.000005
s3_get_usd = 0.0000004

# [alerts]
# Alerts (budgets, failed checks, drift, model health, failed executions) are recorded
# (`engage alerts`) and delivered to each channel set here:
# webhook_url = "http://127.0.0.1:9000/alerts"   # POST of the alert's JSON
# command = "logger -t engage"                    # run with the alert's JSON on stdin

[query]
# Refuse a query whose estimated scan exceeds this many bytes (0 = no cutoff).
# `engage query --max-scan-bytes N` overrides it for one query.
max_scan_bytes = 0
max_result_rows = 100000
# A query stops after this many seconds (0 = never). Unset, the CLI allows 600 s and
# `engage serve` 30 s; queries also stop when their HTTP client disconnects or the server stops.
# timeout_seconds = 600
# DuckDB's memory for a query; larger sorts, joins and aggregates spill to <home>/tmp.
memory_limit = "4GB"

[drift]
# `engage drift`: a column drifts when its PSI reaches psi, or when its test's p-value is below
# p_value and its effect (KS statistic; JS distance for categories) reaches min_effect. The
# dataset drifts when at least dataset_share of the compared columns drift.
psi = 0.2
p_value = 0.01
min_effect = 0.1
dataset_share = 0.5

# ---------------------------------------------------------------------------
# Tables. Each is stored as lake/<table>/dt=YYYY-MM-DD/part-*.parquet, partitioned by the
# UTC date of time_column. Column options:
#   type      string | int64 | double | bool | timestamp | date
#   required  reject rows where the value is missing
#   source    source column name to read (default: the column's name)
#   expr      SQL expression over source columns instead of `source`
#   min, max, allowed, max_length, format (strptime format for text times)
# ---------------------------------------------------------------------------

[tables.events]
time_column = "event_time"
# primary_key = ["event_id"]   # optional: rejects duplicates within an ingest and against the
#                              # lake, at the price of a key scan (events are idempotent by file)
retention_days = 400
require_partition_filter = false
min_time = "1990-01-01"
max_future_days = 2

[[tables.events.columns]]
name = "event_id"
type = "int64"
required = true

[[tables.events.columns]]
name = "customer_id"
type = "int64"
required = true
min = 0

[[tables.events.columns]]
name = "event_time"
type = "timestamp"
required = true

[[tables.events.columns]]
name = "event_type"
type = "string"
required = true
allowed = ["session", "page_view", "add_to_cart", "purchase", "email_open", "support_contact"]

[[tables.events.columns]]
name = "channel"
type = "string"
allowed = ["web", "app", "email", "store"]

[[tables.events.columns]]
name = "amount"
type = "double"
min = 0
max = 1000000

[[tables.events.columns]]
name = "properties"
type = "string"
max_length = 65536

# Data-quality checks (`engage check`, and the pipeline's data-quality step before training;
# docs/monitor.md). An "error" check that fails stops the pipeline; a "warning" only reports.
[[tables.events.checks]]
name = "events_present"
type = "row_count"
min = 1

[[tables.events.checks]]
name = "qualifying_events"    # events of [engagement] qualifying_types: something to predict
type = "row_count"
where = "event_type = 'purchase'"
min = 1

[[tables.events.checks]]
name = "history_days"         # training's horizon, earlier cutoffs and a month of features
type = "history_days"
min = 150

[[tables.events.checks]]
name = "volume_last_7_days"   # the newest week's events within 50% of the week before
type = "volume_change"
days = 7
max_change_percent = 50
severity = "warning"

[[tables.events.checks]]
name = "latest_ingest_rejects"
type = "ingest_rejects"
max_reject_percent = 1
severity = "warning"

# A snapshot table (no time_column): each load lands in the partition of its date.
[tables.customers]
primary_key = ["customer_id"]
retention_days = 0

[[tables.customers.columns]]
name = "customer_id"
type = "int64"
required = true
min = 0

[[tables.customers.columns]]
name = "signup_time"
type = "timestamp"
required = true

[[tables.customers.columns]]
name = "country"
type = "string"

[[tables.customers.columns]]
name = "acquisition_channel"
type = "string"
allowed = ["web", "app", "email", "store"]

[[tables.customers.columns]]
name = "plan"
type = "string"

[[tables.customers.columns]]
name = "age"
type = "int64"
min = 13
max = 120
)";
}

}  // namespace engage
