#include "engage/features/features.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <set>

#include "engage/core/text.h"
#include "engage/lake/duck.h"

namespace engage::features {

using lake::SqlIdent;
using lake::SqlQuote;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// A column name made of a prefix and a value: "type_add_to_cart_30d".
std::string Slug(std::string_view value) {
  std::string out;
  for (char c : value) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (c >= 'A' && c <= 'Z') {
      out.push_back(static_cast<char>(c - 'A' + 'a'));
    } else {
      out.push_back(ok ? c : '_');
    }
  }
  return out.empty() ? "_" : out;
}

std::string SqlStringList(const std::vector<std::string>& values) {
  std::string out;
  for (const auto& v : values) out += (out.empty() ? "" : ", ") + SqlQuote(v);
  return out;
}

}  // namespace

Result<int64_t> ParseDay(const std::string& text) {
  int y = 0;
  unsigned m = 0, d = 0;
  char tail = 0;
  if (text.size() != 10 || std::sscanf(text.c_str(), "%4d-%2u-%2u%c", &y, &m, &d, &tail) != 3) {
    return InvalidArgumentError(fmt::format("'{}' is not a date (YYYY-MM-DD)", text));
  }
  std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{d}};
  if (!ymd.ok()) return InvalidArgumentError(fmt::format("'{}' is not a valid date", text));
  return static_cast<int64_t>(std::chrono::sys_days(ymd).time_since_epoch().count());
}

std::string FormatDay(int64_t days) {
  std::chrono::year_month_day ymd{std::chrono::sys_days(std::chrono::days(days))};
  return fmt::format("{:04d}-{:02d}-{:02d}", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
}

int FeatureFrame::Find(const std::string& name) const {
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<int>(i);
  }
  return -1;
}

Status FeatureFrame::AddColumn(const std::string& name, std::vector<float> values) {
  if (static_cast<int64_t>(values.size()) != rows()) {
    return InvalidArgumentError(
        fmt::format("feature '{}' has {} values for {} rows", name, values.size(), rows()));
  }
  if (Find(name) >= 0) return AlreadyExistsError(fmt::format("feature '{}' exists", name));
  names.push_back(name);
  columns.push_back(std::move(values));
  return Status::Ok();
}

std::vector<float> FeatureFrame::RowMajor() const {
  size_t n = customer_ids.size(), k = columns.size();
  std::vector<float> out(n * k);
  for (size_t j = 0; j < k; ++j) {
    const std::vector<float>& col = columns[j];
    for (size_t i = 0; i < n; ++i) out[i * k + j] = col[i];
  }
  return out;
}

Status FeatureFrame::Append(FeatureFrame other) {
  if (rows() == 0 && names.empty()) {
    *this = std::move(other);
    return Status::Ok();
  }
  if (other.names != names) {
    return InvalidArgumentError("cannot append feature rows with different columns");
  }
  for (size_t j = 0; j < columns.size(); ++j) {
    columns[j].insert(columns[j].end(), other.columns[j].begin(), other.columns[j].end());
  }
  customer_ids.insert(customer_ids.end(), std::make_move_iterator(other.customer_ids.begin()),
                      std::make_move_iterator(other.customer_ids.end()));
  cutoffs.insert(cutoffs.end(), other.cutoffs.begin(), other.cutoffs.end());
  labels.insert(labels.end(), other.labels.begin(), other.labels.end());
  return Status::Ok();
}

std::string FeatureFrame::ToCsv() const {
  std::string out = "customer_id,cutoff,label";
  for (const auto& n : names) out += "," + n;
  out += "\n";
  auto num = [](float v) { return std::isnan(v) ? std::string() : fmt::format("{}", v); };
  for (size_t i = 0; i < customer_ids.size(); ++i) {
    const std::string& id = customer_ids[i];
    if (id.find_first_of(",\"\n\r") == std::string::npos) {
      out += id;
    } else {
      out += "\"";
      for (char c : id) out += c == '"' ? std::string("\"\"") : std::string(1, c);
      out += "\"";
    }
    out += "," + cutoffs[i] + "," + num(labels[i]);
    for (const auto& col : columns) out += "," + num(col[i]);
    out += "\n";
  }
  return out;
}

Json FeatureFrame::Summary() const {
  int64_t labelled = 0, positive = 0;
  for (float l : labels) {
    labelled += std::isnan(l) ? 0 : 1;
    positive += l == 1 ? 1 : 0;
  }
  Json cols = Json::array();
  for (size_t j = 0; j < names.size(); ++j) {
    int64_t missing = 0;
    double sum = 0;
    for (float v : columns[j]) {
      if (std::isnan(v)) {
        ++missing;
      } else {
        sum += v;
      }
    }
    int64_t present = rows() - missing;
    cols.push_back(Json{{"name", names[j]},
                        {"missing", rows() > 0 ? static_cast<double>(missing) / rows() : 0.0},
                        {"mean", present > 0 ? sum / present : 0.0}});
  }
  return Json{{"rows", rows()},
              {"labelled", labelled},
              {"positive_rate", labelled > 0 ? static_cast<double>(positive) / labelled : 0.0},
              {"features", std::move(cols)}};
}

std::string FeatureFrame::SummaryText() const {
  Json summary = Summary();
  std::vector<std::vector<std::string>> table;
  for (const Json& c : summary["features"]) {
    table.push_back({c["name"].get<std::string>(),
                     fmt::format("{:.1f}%", 100 * c["missing"].get<double>()),
                     fmt::format("{:.4g}", c["mean"].get<double>())});
  }
  std::set<std::string> days(cutoffs.begin(), cutoffs.end());
  return FormatTable({"feature", "missing", "mean"}, table) +
         fmt::format("{} rows at {} cutoff(s), {} labelled, positive rate {:.4f}\n", rows(),
                     days.size(), summary["labelled"].get<int64_t>(),
                     summary["positive_rate"].get<double>());
}

Result<std::vector<std::string>> FeatureBuilder::Cutoffs(const std::vector<std::string>& requested,
                                                         bool training) {
  if (training) {
    if (!requested.empty()) return InvalidArgumentError("--training and --cutoff are exclusive");
    return TrainingCutoffs();
  }
  if (!requested.empty()) {
    // Each cutoff once, oldest first: a repeated one would repeat every row.
    std::set<std::string> unique(requested.begin(), requested.end());
    std::vector<std::string> days(unique.begin(), unique.end());
    ENGAGE_RETURN_IF_ERROR(CheckCutoffs(days));
    return days;
  }
  ENGAGE_ASSIGN_OR_RETURN(std::string end, DataEnd());
  return std::vector<std::string>{end};
}

Status FeatureBuilder::Resolve() {
  if (resolved_) return Status::Ok();
  const Config& cfg = engine_.lake().config();
  auto events = cfg.Table(config_.events_table);
  if (!events.ok()) {
    return NotFoundError(fmt::format("[engagement] events_table '{}' is not a table in engage.toml",
                                     config_.events_table));
  }
  const TableSpec& ev = **events;
  time_column_ = config_.time_column.empty() ? ev.time_column : config_.time_column;
  if (time_column_.empty()) {
    return InvalidArgumentError(fmt::format(
        "table '{}' has no time_column; set [engagement] time_column", config_.events_table));
  }
  for (const std::string* col : {&config_.customer_column, &time_column_, &config_.type_column,
                                 &config_.channel_column, &config_.amount_column}) {
    if (!col->empty() && ev.FindColumn(*col) == nullptr) {
      return NotFoundError(
          fmt::format("[engagement]: table '{}' has no column '{}'", config_.events_table, *col));
    }
  }
  if (config_.event_types.empty()) {
    const ColumnSpec* t = ev.FindColumn(config_.type_column);
    if (t != nullptr) config_.event_types = t->allowed;
  }
  if (config_.channels.empty() && !config_.channel_column.empty()) {
    const ColumnSpec* c = ev.FindColumn(config_.channel_column);
    if (c != nullptr) config_.channels = c->allowed;
  }
  auto customers = config_.customers_table.empty() ? Result<const TableSpec*>(NotFoundError(""))
                                                   : cfg.Table(config_.customers_table);
  has_customers_ = customers.ok() && (*customers)->FindColumn(config_.customer_column) != nullptr;
  if (has_customers_) {
    for (const ColumnSpec& c : (*customers)->columns) {
      if (c.name == config_.customer_column) continue;
      bool usable = c.type == ColumnType::kInt64 || c.type == ColumnType::kDouble ||
                    c.type == ColumnType::kBool || c.type == ColumnType::kTimestamp ||
                    c.type == ColumnType::kDate ||
                    (c.type == ColumnType::kString && !c.allowed.empty());
      if (usable) attributes_.push_back(&c);
    }
  }
  resolved_ = true;
  return Status::Ok();
}

Result<std::string> FeatureBuilder::DataEnd() {
  ENGAGE_RETURN_IF_ERROR(Resolve());
  ENGAGE_ASSIGN_OR_RETURN(
      lake::DuckResult r,
      engine_.RunTrusted(fmt::format("SELECT CAST(MAX(CAST({} AS DATE)) + 1 AS VARCHAR) FROM {}",
                                     SqlIdent(time_column_), SqlIdent(config_.events_table)),
                         "features"));
  auto end = r.RowCount() > 0 ? r.Str(0, 0) : std::nullopt;
  if (!end) {
    return FailedPreconditionError(
        fmt::format("table '{}' has no events; ingest some first", config_.events_table));
  }
  return *end;
}

Result<std::vector<std::string>> FeatureBuilder::TrainingCutoffs() {
  ENGAGE_ASSIGN_OR_RETURN(std::string end, DataEnd());
  ENGAGE_ASSIGN_OR_RETURN(int64_t end_day, ParseDay(end));
  int64_t latest = end_day - config_.horizon_days;
  std::vector<std::string> out;
  for (int i = config_.training_cutoffs - 1; i >= 0; --i) {
    out.push_back(FormatDay(latest - static_cast<int64_t>(i) * config_.cutoff_step_days));
  }
  return out;
}

Status FeatureBuilder::CheckCutoffs(const std::vector<std::string>& cutoffs) {
  std::vector<int64_t> days;
  for (const std::string& cutoff : cutoffs) {
    ENGAGE_ASSIGN_OR_RETURN(int64_t t, ParseDay(cutoff));
    days.push_back(t);
  }
  if (cutoffs.empty()) return Status::Ok();
  ENGAGE_RETURN_IF_ERROR(Resolve());
  ENGAGE_ASSIGN_OR_RETURN(
      lake::DuckResult r,
      engine_.RunTrusted(fmt::format("SELECT CAST(MIN(CAST({0} AS DATE)) AS VARCHAR), "
                                     "CAST(MAX(CAST({0} AS DATE)) AS VARCHAR) FROM {1}",
                                     SqlIdent(time_column_), SqlIdent(config_.events_table)),
                         "features"));
  auto first = r.RowCount() > 0 ? r.Str(0, 0) : std::nullopt;
  auto last = r.RowCount() > 0 ? r.Str(1, 0) : std::nullopt;
  if (!first || !last) {
    return FailedPreconditionError(
        fmt::format("table '{}' has no events; ingest some first", config_.events_table));
  }
  ENGAGE_ASSIGN_OR_RETURN(int64_t first_day, ParseDay(*first));
  ENGAGE_ASSIGN_OR_RETURN(int64_t last_day, ParseDay(*last));
  for (size_t i = 0; i < cutoffs.size(); ++i) {
    const int64_t t = days[i];
    if (t > first_day && t - config_.lookback_days <= last_day) continue;
    return InvalidArgumentError(fmt::format(
        "cutoff {} is outside the events' dates {} .. {} (features at a cutoff read the {} days "
        "before it, and no customer has an event there); pick a cutoff from {} to {}, or none "
        "for the day after the last event",
        cutoffs[i], *first, *last, config_.lookback_days, FormatDay(first_day + 1),
        FormatDay(last_day + config_.lookback_days)));
  }
  return Status::Ok();
}

Result<std::string> FeatureBuilder::Sql(const std::string& cutoff) {
  ENGAGE_RETURN_IF_ERROR(Resolve());
  ENGAGE_ASSIGN_OR_RETURN(int64_t t, ParseDay(cutoff));
  const EngagementConfig& c = config_;
  std::string T = fmt::format("TIMESTAMP '{} 00:00:00'", cutoff);
  std::string ts = fmt::format("CAST({} AS TIMESTAMP)", SqlIdent(time_column_));
  std::string cust = fmt::format("CAST({} AS VARCHAR)", SqlIdent(c.customer_column));
  // Partitions: dt is the UTC date of the event time, so [t - lookback, t) lies in dt from
  // t - lookback to t - 1, and the label window [t, t + H) in dt from t to t + H - 1.
  std::string events_before = fmt::format(
      "SELECT * FROM {tbl} WHERE dt >= DATE '{lo}' AND dt <= DATE '{hi}' AND {ts} < {T} AND "
      "{ts} >= {T} - INTERVAL {lb} DAY",
      fmt::arg("tbl", SqlIdent(c.events_table)), fmt::arg("lo", FormatDay(t - c.lookback_days)),
      fmt::arg("hi", FormatDay(t - 1)), fmt::arg("ts", ts), fmt::arg("T", T),
      fmt::arg("lb", c.lookback_days));
  std::string qual =
      fmt::format("{} IN ({})", SqlIdent(c.type_column), SqlStringList(c.qualifying_types));
  std::string amount = c.amount_column.empty() ? "0.0"
                                               : fmt::format("COALESCE(CAST({} AS DOUBLE), 0)",
                                                             SqlIdent(c.amount_column));
  auto within = [&](int days) { return fmt::format("ts >= {} - INTERVAL {} DAY", T, days); };

  std::vector<std::string> agg;  // expressions over `ev`, each "expr AS name"
  agg.push_back(fmt::format("date_diff('second', MAX(ts), {})/86400.0 AS recency_days", T));
  agg.push_back(fmt::format("date_diff('second', MIN(ts), {})/86400.0 AS tenure_days", T));
  agg.push_back(
      fmt::format("date_diff('second', MAX(ts) FILTER (WHERE q), {})/86400.0 AS "
                  "engaged_recency_days",
                  T));
  // Counts over the whole lookback, for the rates below (not output themselves).
  std::vector<std::string> helpers = {"COUNT(*) AS events_lookback",
                                      "COUNT(*) FILTER (WHERE q) AS engaged_lookback"};
  for (const std::string& type : c.event_types) {
    helpers.push_back(fmt::format("COUNT(*) FILTER (WHERE ty = {}) AS type_{}_lookback",
                                  SqlQuote(type), Slug(type)));
  }
  for (int w : c.windows_days) {
    agg.push_back(fmt::format("COUNT(*) FILTER (WHERE {}) AS events_{}d", within(w), w));
    agg.push_back(fmt::format("COUNT(*) FILTER (WHERE q AND {}) AS engaged_{}d", within(w), w));
    agg.push_back(
        fmt::format("COUNT(DISTINCT d) FILTER (WHERE {}) AS active_days_{}d", within(w), w));
    if (!c.amount_column.empty()) {
      agg.push_back(fmt::format("COALESCE(SUM(amt) FILTER (WHERE q AND {}), 0) AS monetary_{}d",
                                within(w), w));
    }
  }
  // Trend: the last 30 days against the 30 before.
  std::string prev30 =
      fmt::format("ts < {T} - INTERVAL 30 DAY AND ts >= {T} - INTERVAL 60 DAY", fmt::arg("T", T));
  agg.push_back(fmt::format("COUNT(*) FILTER (WHERE {}) AS events_prev_30d", prev30));
  agg.push_back(fmt::format("COUNT(*) FILTER (WHERE q AND {}) AS engaged_prev_30d", prev30));
  if (!c.amount_column.empty()) {
    agg.push_back("COALESCE(SUM(amt) FILTER (WHERE q), 0) AS monetary_total");
    agg.push_back("AVG(amt) FILTER (WHERE q AND amt > 0) AS monetary_mean");
  }
  std::set<std::string> used_names;
  for (const std::string& type : c.event_types) {
    // Recency per type: a customer still receiving emails may have stopped visiting.
    std::string last = fmt::format("last_{}_days", Slug(type));
    if (used_names.insert(last).second) {
      agg.push_back(
          fmt::format("date_diff('second', MAX(ts) FILTER (WHERE ty = {}), {})/86400.0 "
                      "AS {}",
                      SqlQuote(type), T, last));
    }
    for (int w : {30, 90, 365}) {
      std::string name = fmt::format("type_{}_{}d", Slug(type), w);
      if (!used_names.insert(name).second) continue;
      agg.push_back(fmt::format("COUNT(*) FILTER (WHERE ty = {} AND {}) AS {}", SqlQuote(type),
                                within(w), name));
    }
  }
  for (const std::string& ch : c.channels) {
    std::string name = fmt::format("channel_{}_90d", Slug(ch));
    if (!used_names.insert(name).second) continue;
    agg.push_back(fmt::format("COUNT(*) FILTER (WHERE ch = {} AND {}) AS {}", SqlQuote(ch),
                              within(90), name));
  }
  std::string agg_sql;
  for (const auto& a : agg) agg_sql += ",\n    " + a;
  for (const auto& h : helpers) agg_sql += ",\n    " + h;

  std::vector<std::string> outputs;  // final SELECT columns after customer_id
  for (const auto& a : agg) outputs.push_back("agg." + a.substr(a.rfind(" AS ") + 4));
  outputs.push_back("agg.events_30d - agg.events_prev_30d AS events_trend_30d");
  outputs.push_back("agg.engaged_30d - agg.engaged_prev_30d AS engaged_trend_30d");
  // Rates over the customer's observed life in the lookback, and how many events of each type
  // that rate would have produced since the last one: a customer silent for many of their
  // usual gaps has probably dropped out.
  outputs.push_back("agg.engaged_lookback / GREATEST(agg.tenure_days, 1) AS engaged_per_day");
  outputs.push_back("agg.events_lookback / GREATEST(agg.tenure_days, 1) AS events_per_day");
  for (const std::string& type : c.event_types) {
    std::string slug = Slug(type);
    std::string rate = fmt::format("rate_{}_per_day", slug);
    if (!used_names.insert(rate).second) continue;
    outputs.push_back(
        fmt::format("agg.type_{0}_lookback / GREATEST(agg.tenure_days, 1) AS {1}", slug, rate));
    outputs.push_back(
        fmt::format("agg.last_{0}_days * agg.type_{0}_lookback / GREATEST(agg.tenure_days, 1) AS "
                    "{0}_gaps_since_last",
                    slug));
  }

  std::string ctes = fmt::format(
      "ev AS (\n  SELECT {cust} AS c, {ts} AS ts, CAST({ts} AS DATE) AS d, {type} AS ty, {ch} AS "
      "ch,\n         {amount} AS amt, {qual} AS q\n  FROM ({before}) e),\n"
      "agg AS (\n  SELECT c{agg}\n  FROM ev GROUP BY c),\n"
      "lab AS (\n  SELECT DISTINCT {cust} AS c FROM {tbl}\n  WHERE dt >= DATE '{t0}' AND dt <= "
      "DATE '{t1}' AND {ts} >= {T} AND {ts} < {T} + INTERVAL {h} DAY AND {qual})",
      fmt::arg("cust", cust), fmt::arg("ts", ts), fmt::arg("type", SqlIdent(c.type_column)),
      fmt::arg("ch", c.channel_column.empty() ? "NULL" : SqlIdent(c.channel_column)),
      fmt::arg("amount", amount), fmt::arg("qual", qual), fmt::arg("before", events_before),
      fmt::arg("agg", agg_sql), fmt::arg("tbl", SqlIdent(c.events_table)),
      fmt::arg("t0", FormatDay(t)), fmt::arg("t1", FormatDay(t + c.horizon_days - 1)),
      fmt::arg("T", T), fmt::arg("h", c.horizon_days));
  std::string population = "SELECT c FROM agg";
  std::string joins;
  if (has_customers_) {
    // The latest snapshot of each customer; attributes are taken as static (see the header).
    std::string signup = c.signup_column.empty() ? "" : c.signup_column;
    const TableSpec* ct = *engine_.lake().config().Table(c.customers_table);
    bool has_signup = !signup.empty() && ct->FindColumn(signup) != nullptr;
    ctes += fmt::format(
        ",\ncust AS (\n  SELECT * EXCLUDE (rn) FROM (SELECT *, {cust} AS c, row_number() OVER "
        "(PARTITION BY {cust} ORDER BY dt DESC) AS rn FROM {tbl}) WHERE rn = 1{signup})",
        fmt::arg("cust", cust), fmt::arg("tbl", SqlIdent(c.customers_table)),
        fmt::arg("signup", has_signup ? fmt::format(" AND (CAST({} AS TIMESTAMP) < {} OR {} IS "
                                                    "NULL)",
                                                    SqlIdent(signup), T, SqlIdent(signup))
                                      : ""));
    population += " UNION SELECT c FROM cust";
    joins += "\nLEFT JOIN cust ON cust.c = pop.c";
    for (const ColumnSpec* a : attributes_) {
      std::string col = "cust." + SqlIdent(a->name);
      switch (a->type) {
        case ColumnType::kTimestamp:
        case ColumnType::kDate:
          outputs.push_back(
              fmt::format("date_diff('second', CAST({} AS TIMESTAMP), {})/86400.0 "
                          "AS days_since_{}",
                          col, T, a->name));
          break;
        case ColumnType::kString:
          for (const std::string& v : a->allowed) {
            outputs.push_back(fmt::format("CAST({} = {} AS INTEGER) AS {}_{}", col, SqlQuote(v),
                                          a->name, Slug(v)));
          }
          break;
        default:
          outputs.push_back(fmt::format("CAST({} AS DOUBLE) AS {}", col, a->name));
      }
    }
  }
  for (size_t i = 0; i < c.sql_features.size(); ++i) {
    const SqlFeature& f = c.sql_features[i];
    std::string body = f.sql;
    auto replace_all = [&body](const std::string& from, const std::string& to) {
      for (size_t p = body.find(from); p != std::string::npos; p = body.find(from, p + to.size())) {
        body.replace(p, from.size(), to);
      }
    };
    replace_all("{events}", "(" + events_before + ")");
    replace_all("{cutoff}", T);
    ctes += fmt::format(",\nuf{} AS (SELECT CAST(customer_id AS VARCHAR) AS c, value FROM ({}))", i,
                        body);
    joins += fmt::format("\nLEFT JOIN uf{i} ON uf{i}.c = pop.c", fmt::arg("i", i));
    outputs.push_back(fmt::format("CAST(uf{}.value AS DOUBLE) AS {}", i, f.name));
  }
  std::string out_sql;
  for (const auto& o : outputs) out_sql += ",\n  " + o;
  return fmt::format(
      "WITH {ctes},\npop AS ({population})\nSELECT pop.c AS customer_id,\n  CAST(lab.c IS NOT "
      "NULL AS INTEGER) AS label{outputs}\nFROM pop\nLEFT JOIN agg ON agg.c = pop.c\nLEFT JOIN "
      "lab ON lab.c = pop.c{joins}\nORDER BY pop.c",
      fmt::arg("ctes", ctes), fmt::arg("population", population), fmt::arg("outputs", out_sql),
      fmt::arg("joins", joins));
}

Result<FeatureFrame> FeatureBuilder::Build(const std::vector<std::string>& cutoffs) {
  ENGAGE_RETURN_IF_ERROR(Resolve());
  ENGAGE_ASSIGN_OR_RETURN(std::string end, DataEnd());
  ENGAGE_ASSIGN_OR_RETURN(int64_t end_day, ParseDay(end));
  FeatureFrame all;
  for (const std::string& cutoff : cutoffs) {
    ENGAGE_ASSIGN_OR_RETURN(int64_t t, ParseDay(cutoff));
    ENGAGE_ASSIGN_OR_RETURN(std::string sql, Sql(cutoff));
    auto res = engine_.RunTrusted(sql, "features");
    if (!res.ok()) {
      std::string hint;
      for (const SqlFeature& f : config_.sql_features) {
        hint += (hint.empty() ? " (check the SQL of [[engagement.features]]: " : ", ") + f.name;
      }
      if (!hint.empty()) hint += ")";
      return Status(res.status().code(), fmt::format("building features at {}: {}{}", cutoff,
                                                     res.status().message(), hint));
    }
    lake::DuckResult& r = *res;
    FeatureFrame f;
    int ncols = r.ColumnCount();
    for (int j = 2; j < ncols; ++j) f.names.push_back(r.ColumnName(j));
    f.columns.assign(f.names.size(), {});
    int64_t n = r.RowCount();
    bool labelled = t + config_.horizon_days <= end_day;
    f.customer_ids.reserve(static_cast<size_t>(n));
    f.labels.reserve(static_cast<size_t>(n));
    for (auto& col : f.columns) col.reserve(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      f.customer_ids.push_back(r.Str(0, i).value_or(""));
      f.labels.push_back(labelled ? static_cast<float>(r.Int(1, i)) : kNaN);
      for (int j = 2; j < ncols; ++j) {
        f.columns[static_cast<size_t>(j - 2)].push_back(
            r.IsNull(j, i) ? kNaN : static_cast<float>(r.Double(j, i)));
      }
    }
    f.cutoffs.assign(static_cast<size_t>(n), cutoff);
    ENGAGE_RETURN_IF_ERROR(all.Append(std::move(f)));
  }
  return all;
}

}  // namespace engage::features
