#include "engage/monitor/drift.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <set>

#include "engage/core/clock.h"
#include "engage/core/text.h"
#include "engage/lake/duck.h"

namespace engage::monitor {

namespace {

using lake::SqlIdent;
using lake::SqlQuote;

constexpr double kPsiFloor = 1e-4;  // a bin's smallest share in PSI
constexpr int kGridSteps = 200;     // the KS grid: the reference's i/200 quantiles
constexpr int kTopCategories = 64;  // categories kept by name; the rest are "other"

// "HH:MM:SS" -> seconds into the day; false if malformed.
bool ParseClock(const std::string& s, int64_t* seconds) {
  if (s.size() != 8 || s[2] != ':' || s[5] != ':') return false;
  for (size_t i : {0, 1, 3, 4, 6, 7}) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  int h = std::stoi(s.substr(0, 2)), m = std::stoi(s.substr(3, 2)), sec = std::stoi(s.substr(6, 2));
  if (h > 23 || m > 59 || sec > 59) return false;
  *seconds = h * 3600 + m * 60 + sec;
  return true;
}

// One end of a window: a date or a timestamp, as days and seconds into the day.
struct WindowEnd {
  int64_t days = 0;
  int64_t seconds = 0;
  bool has_time = false;
};

Result<WindowEnd> ParseEnd(std::string s, const std::string& which, const std::string& text) {
  auto bad = [&](const std::string& why) {
    return InvalidArgumentError(
        fmt::format("{} window '{}': {} (expected START..END with dates YYYY-MM-DD or timestamps "
                    "YYYY-MM-DDTHH:MM:SS, e.g. 2024-01-01..2024-01-31)",
                    which, text, why));
  };
  WindowEnd e;
  if (!s.empty() && (s.back() == 'Z' || s.back() == 'z')) s.pop_back();
  std::string date = s.substr(0, std::min<size_t>(s.size(), 10));
  if (s.size() > 10) {
    if (s[10] != 'T' && s[10] != ' ') return bad(fmt::format("'{}' is not a date or timestamp", s));
    if (!ParseClock(s.substr(11), &e.seconds)) {
      return bad(fmt::format("'{}' is not a timestamp", s));
    }
    e.has_time = true;
  }
  if (date.size() != 10 || !ParseDate(date, &e.days) || FormatDate(e.days) != date) {
    return bad(fmt::format("'{}' is not a date", s.empty() ? std::string("(empty)") : s));
  }
  return e;
}

std::string TimestampText(int64_t days, int64_t seconds) {
  return fmt::format("{} {:02}:{:02}:{:02}", FormatDate(days), seconds / 3600, seconds / 60 % 60,
                     seconds % 60);
}

std::string Fixed(const std::optional<double>& v, int digits) {
  return v ? fmt::format("{:.{}f}", *v, digits) : std::string("-");
}

std::string PValueText(const std::optional<double>& p) {
  if (!p) return "-";
  if (*p < 1e-4) return fmt::format("{:.1e}", *p);
  return fmt::format("{:.4f}", *p);
}

std::vector<double> Shares(const std::vector<double>& counts) {
  double total = std::accumulate(counts.begin(), counts.end(), 0.0);
  std::vector<double> out(counts.size(), 0.0);
  if (total <= 0) return out;
  for (size_t i = 0; i < counts.size(); ++i) out[i] = counts[i] / total;
  return out;
}

std::vector<double> ToDouble(const std::vector<int64_t>& v) {
  return std::vector<double>(v.begin(), v.end());
}

Json OptionalJson(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }

// Shared by both kinds: the missing rates, and whether either side has no values.
bool FillMissing(ColumnDrift* d, int64_t ref_values, int64_t ref_rows, int64_t cur_values,
                 int64_t cur_rows) {
  d->reference_missing =
      ref_rows > 0 ? static_cast<double>(ref_rows - ref_values) / static_cast<double>(ref_rows) : 0;
  d->current_missing =
      cur_rows > 0 ? static_cast<double>(cur_rows - cur_values) / static_cast<double>(cur_rows) : 0;
  d->missing_change = d->current_missing - d->reference_missing;
  if (ref_values > 0 && cur_values > 0) return true;
  if ((ref_values > 0) != (cur_values > 0)) {
    d->drifted = true;
    d->reason = ref_values > 0 ? "no values in the current window" : "no values in the reference";
  }
  return false;
}

}  // namespace

// --- windows ----------------------------------------------------------------------------------

Result<DriftWindow> ParseDriftWindow(const std::string& text, const std::string& which) {
  size_t dots = text.find("..");
  if (dots == std::string::npos) {
    return InvalidArgumentError(fmt::format(
        "{} window '{}' has no '..': give START..END (inclusive), e.g. 2024-01-01..2024-01-31",
        which, text));
  }
  ENGAGE_ASSIGN_OR_RETURN(WindowEnd a, ParseEnd(text.substr(0, dots), which, text));
  ENGAGE_ASSIGN_OR_RETURN(WindowEnd b, ParseEnd(text.substr(dots + 2), which, text));
  DriftWindow w;
  w.text = text;
  w.start = TimestampText(a.days, a.seconds);
  w.end_inclusive = b.has_time;
  w.end = b.has_time ? TimestampText(b.days, b.seconds) : TimestampText(b.days + 1, 0);
  int64_t start_s = a.days * 86400 + a.seconds;
  int64_t end_s = b.days * 86400 + (b.has_time ? b.seconds : 86399);
  if (end_s < start_s) {
    return InvalidArgumentError(fmt::format("{} window '{}' ends before it starts", which, text));
  }
  w.dt_from = FormatDate(a.days);
  w.dt_to = FormatDate(b.days);
  return w;
}

std::string DriftWindow::Condition(const std::string& column) const {
  return fmt::format(
      "dt BETWEEN DATE '{}' AND DATE '{}' AND {} >= TIMESTAMP '{}' AND {} {} "
      "TIMESTAMP '{}'",
      dt_from, dt_to, column, start, column, end_inclusive ? "<=" : "<", end);
}

// --- statistics -------------------------------------------------------------------------------

double Psi(const std::vector<double>& reference, const std::vector<double>& current) {
  std::vector<double> r = Shares(reference), c = Shares(current);
  double psi = 0;
  for (size_t i = 0; i < r.size() && i < c.size(); ++i) {
    double ri = std::max(r[i], kPsiFloor), ci = std::max(c[i], kPsiFloor);
    psi += (ci - ri) * std::log(ci / ri);
  }
  return psi;
}

double JensenShannonDistance(const std::vector<double>& reference,
                             const std::vector<double>& current) {
  std::vector<double> p = Shares(reference), q = Shares(current);
  double js = 0;
  for (size_t i = 0; i < p.size() && i < q.size(); ++i) {
    double m = (p[i] + q[i]) / 2;
    if (p[i] > 0) js += 0.5 * p[i] * std::log2(p[i] / m);
    if (q[i] > 0) js += 0.5 * q[i] * std::log2(q[i] / m);
  }
  return std::sqrt(std::clamp(js, 0.0, 1.0));
}

double GridKsStatistic(const std::vector<double>& reference, const std::vector<double>& current) {
  std::vector<double> r = Shares(reference), c = Shares(current);
  double fr = 0, fc = 0, d = 0;
  for (size_t i = 0; i < r.size() && i < c.size(); ++i) {
    fr += r[i];
    fc += c[i];
    d = std::max(d, std::abs(fr - fc));
  }
  return std::min(d, 1.0);
}

double KolmogorovSurvival(double x) {
  if (!(x > 0)) return 1.0;
  if (x < 1.18) {
    // The series in e^(-(2k-1)²π²/(8x²)), which converges fast for small x.
    const double pi = 3.14159265358979323846;
    double y = std::exp(-pi * pi / (8 * x * x));
    double sum = 0;
    for (int k = 1; k <= 6; ++k) sum += std::pow(y, (2 * k - 1) * (2 * k - 1));
    return std::clamp(1.0 - std::sqrt(2 * pi) / x * sum, 0.0, 1.0);
  }
  double sum = 0;
  for (int k = 1; k <= 100; ++k) {
    double term = std::exp(-2.0 * k * k * x * x);
    sum += (k % 2 == 1 ? term : -term);
    if (term < 1e-17) break;
  }
  return std::clamp(2 * sum, 0.0, 1.0);
}

double KolmogorovSmirnovPValue(double d, int64_t n, int64_t m) {
  if (n <= 0 || m <= 0) return 1.0;
  double e =
      std::sqrt(static_cast<double>(n) * static_cast<double>(m) / static_cast<double>(n + m));
  return KolmogorovSurvival((e + 0.12 + 0.11 / e) * d);
}

double RegularizedGammaQ(double a, double x) {
  if (!(a > 0) || !(x > 0)) return 1.0;
  const double gln = std::lgamma(a);
  if (x < a + 1) {
    // Series for P(a, x); Q = 1 - P.
    double ap = a, sum = 1.0 / a, del = sum;
    for (int n = 0; n < 10000; ++n) {
      ap += 1;
      del *= x / ap;
      sum += del;
      if (std::abs(del) < std::abs(sum) * 1e-15) break;
    }
    double p = sum * std::exp(-x + a * std::log(x) - gln);
    return std::clamp(1.0 - p, 0.0, 1.0);
  }
  // Continued fraction for Q(a, x) (modified Lentz).
  const double tiny = 1e-300;
  double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (int i = 1; i < 10000; ++i) {
    double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1 / d;
    double del = d * c;
    h *= del;
    if (std::abs(del - 1) < 1e-15) break;
  }
  return std::clamp(std::exp(-x + a * std::log(x) - gln) * h, 0.0, 1.0);
}

double ChiSquaredSurvival(double x, double df) {
  if (!(df > 0)) return 1.0;
  return RegularizedGammaQ(df / 2, x / 2);
}

ChiSquaredTest ChiSquaredHomogeneity(const std::vector<double>& reference,
                                     const std::vector<double>& current) {
  ChiSquaredTest t;
  double r = std::accumulate(reference.begin(), reference.end(), 0.0);
  double c = std::accumulate(current.begin(), current.end(), 0.0);
  if (r <= 0 || c <= 0) return t;
  double n = r + c;
  int64_t k = 0;
  for (size_t i = 0; i < reference.size() && i < current.size(); ++i) {
    double total = reference[i] + current[i];
    if (total <= 0) continue;
    ++k;
    double er = r * total / n, ec = c * total / n;
    t.statistic +=
        (reference[i] - er) * (reference[i] - er) / er + (current[i] - ec) * (current[i] - ec) / ec;
  }
  t.df = std::max<int64_t>(k - 1, 0);
  t.p_value = t.df > 0 ? ChiSquaredSurvival(t.statistic, static_cast<double>(t.df)) : 1.0;
  return t;
}

std::string SqlEdges(const std::vector<double>& edges) {
  std::string out;
  for (size_t i = 0; i < edges.size(); ++i) out += fmt::format("{}{}", i ? "," : "", edges[i]);
  return SqlQuote(out);
}

std::vector<int64_t> BinValues(const std::vector<double>& edges, const std::vector<float>& values) {
  std::vector<int64_t> counts(edges.size() + 1, 0);
  for (float f : values) {
    if (std::isnan(f)) continue;
    double v = f;
    counts[static_cast<size_t>(std::lower_bound(edges.begin(), edges.end(), v) - edges.begin())]++;
  }
  return counts;
}

ColumnDrift CompareNumeric(const std::string& column, const std::vector<double>& edges,
                           const std::vector<double>& deciles,
                           const std::vector<int64_t>& reference, int64_t reference_rows,
                           const std::vector<int64_t>& current, int64_t current_rows,
                           const DriftConfig& t) {
  ColumnDrift d;
  d.column = column;
  d.kind = "numeric";
  int64_t rv = std::accumulate(reference.begin(), reference.end(), int64_t{0});
  int64_t cv = std::accumulate(current.begin(), current.end(), int64_t{0});
  if (!FillMissing(&d, rv, reference_rows, cv, current_rows)) return d;
  // PSI over the deciles: each grid bin lies inside one decile bin (the deciles are grid edges).
  std::vector<double> ref_dec(deciles.size() + 1, 0.0), cur_dec(deciles.size() + 1, 0.0);
  for (size_t i = 0; i < reference.size() && i < current.size(); ++i) {
    double upper = i < edges.size() ? edges[i] : std::numeric_limits<double>::infinity();
    size_t bin = static_cast<size_t>(std::lower_bound(deciles.begin(), deciles.end(), upper) -
                                     deciles.begin());
    ref_dec[bin] += static_cast<double>(reference[i]);
    cur_dec[bin] += static_cast<double>(current[i]);
  }
  std::vector<double> r = ToDouble(reference), c = ToDouble(current);
  d.psi = Psi(ref_dec, cur_dec);
  d.statistic = GridKsStatistic(r, c);
  d.p_value = KolmogorovSmirnovPValue(*d.statistic, rv, cv);
  d.js = JensenShannonDistance(r, c);
  if (*d.psi >= t.psi) {
    d.drifted = true;
    d.reason = fmt::format("PSI {:.3f} >= {:g}", *d.psi, t.psi);
  } else if (*d.p_value < t.p_value && *d.statistic >= t.min_effect) {
    d.drifted = true;
    d.reason = fmt::format("KS p {} < {:g} and statistic {:.3f} >= {:g}", PValueText(d.p_value),
                           t.p_value, *d.statistic, t.min_effect);
  }
  return d;
}

ColumnDrift CompareCategorical(const std::string& column, const std::vector<int64_t>& reference,
                               int64_t reference_rows, const std::vector<int64_t>& current,
                               int64_t current_rows, const DriftConfig& t) {
  ColumnDrift d;
  d.column = column;
  d.kind = "categorical";
  int64_t rv = std::accumulate(reference.begin(), reference.end(), int64_t{0});
  int64_t cv = std::accumulate(current.begin(), current.end(), int64_t{0});
  if (!FillMissing(&d, rv, reference_rows, cv, current_rows)) return d;
  std::vector<double> r = ToDouble(reference), c = ToDouble(current);
  d.psi = Psi(r, c);
  ChiSquaredTest chi = ChiSquaredHomogeneity(r, c);
  d.statistic = chi.statistic;
  d.p_value = chi.p_value;
  d.js = JensenShannonDistance(r, c);
  if (*d.psi >= t.psi) {
    d.drifted = true;
    d.reason = fmt::format("PSI {:.3f} >= {:g}", *d.psi, t.psi);
  } else if (*d.p_value < t.p_value && *d.js >= t.min_effect) {
    d.drifted = true;
    d.reason = fmt::format("chi-squared p {} < {:g} and JS distance {:.3f} >= {:g}",
                           PValueText(d.p_value), t.p_value, *d.js, t.min_effect);
  }
  return d;
}

// --- reports ----------------------------------------------------------------------------------

Json ColumnDrift::ToJson() const {
  return Json{{"column", column},
              {"kind", kind},
              {"psi", OptionalJson(psi)},
              {"statistic", OptionalJson(statistic)},
              {"p_value", OptionalJson(p_value)},
              {"js", OptionalJson(js)},
              {"missing_change", missing_change},
              {"drifted", drifted},
              {"reason", reason},
              {"reference_missing", reference_missing},
              {"current_missing", current_missing}};
}

void DriftReport::Decide() {
  drifted_columns = 0;
  for (const auto& c : columns) drifted_columns += c.drifted ? 1 : 0;
  dataset_drift =
      !columns.empty() && static_cast<double>(drifted_columns) >=
                              thresholds.dataset_share * static_cast<double>(columns.size());
}

Json DriftReport::ToJson() const {
  Json cols = Json::array();
  for (const auto& c : columns) cols.push_back(c.ToJson());
  Json j{{"dataset_drift", dataset_drift},
         {"columns", std::move(cols)},
         {"reference", Json{{"window", reference}, {"rows", reference_rows}}},
         {"current", Json{{"window", current}, {"rows", current_rows}}},
         {"drifted_columns", drifted_columns},
         {"thresholds", Json{{"psi", thresholds.psi},
                             {"p_value", thresholds.p_value},
                             {"min_effect", thresholds.min_effect},
                             {"dataset_share", thresholds.dataset_share}}}};
  if (!table.empty()) j["table"] = table;
  if (!model.empty()) j["model"] = model;
  return j;
}

std::string DriftReport::ToText() const {
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : columns) {
    rows.push_back({c.column, c.kind, Fixed(c.psi, 4), Fixed(c.statistic, 4), PValueText(c.p_value),
                    Fixed(c.js, 4), fmt::format("{:+.4f}", c.missing_change),
                    c.drifted ? "DRIFT" : "ok", c.reason});
  }
  std::string out =
      fmt::format("{}: reference {} ({} rows), current {} ({} rows)\n\n",
                  table.empty() ? model : table, reference, reference_rows, current, current_rows);
  out += FormatTable(
      {"column", "kind", "psi", "statistic", "p-value", "js", "missing change", "drift", "reason"},
      rows);
  out += fmt::format(
      "\n{}: {} of {} column(s) drifted (dataset drift at {:g} of them; a column drifts at PSI >= "
      "{:g}, or p < {:g} with an effect >= {:g})\n",
      dataset_drift ? "DATASET DRIFT" : "no dataset drift", drifted_columns, columns.size(),
      thresholds.dataset_share, thresholds.psi, thresholds.p_value, thresholds.min_effect);
  return out;
}

// --- table drift ------------------------------------------------------------------------------

namespace {

struct Compared {
  std::string name;
  bool numeric = true;
  std::string expr;  // the column as DOUBLE (numeric) or VARCHAR (categorical)
  // From the reference's sample:
  std::vector<double> edges, deciles;
  std::vector<std::string> categories;
};

Result<Json> JsonCell(lake::DuckResult& r, int col, int64_t row, const std::string& what) {
  if (r.IsNull(col, row)) return Json(nullptr);
  return ParseJson(r.Str(col, row).value_or("null"), what);
}

}  // namespace

Result<DriftReport> TableDrift(sql::QueryEngine& engine, const DriftRequest& request) {
  const Config& config = engine.lake().config();
  if (request.table.empty()) return InvalidArgumentError("drift needs a table (--table)");
  ENGAGE_ASSIGN_OR_RETURN(const TableSpec* spec, config.Table(request.table));
  ENGAGE_ASSIGN_OR_RETURN(DriftWindow ref, ParseDriftWindow(request.reference, "reference"));
  ENGAGE_ASSIGN_OR_RETURN(DriftWindow cur, ParseDriftWindow(request.current, "current"));
  // Snapshot tables (no time column) are windowed by their load date, dt.
  const std::string time_name = spec->time_column.empty() ? "dt" : spec->time_column;
  const std::string time_col = SqlIdent(time_name);

  std::vector<Compared> cols;
  auto add = [&](const ColumnSpec& c) {
    Compared x;
    x.name = c.name;
    switch (c.type) {
      case ColumnType::kInt64:
      case ColumnType::kDouble:
        x.expr = fmt::format("CAST({} AS DOUBLE)", SqlIdent(c.name));
        break;
      case ColumnType::kTimestamp:
      case ColumnType::kDate:
        x.expr = fmt::format("epoch(CAST({} AS TIMESTAMP))", SqlIdent(c.name));
        break;
      case ColumnType::kString:
      case ColumnType::kBool:
        x.numeric = false;
        x.expr = fmt::format("CAST({} AS VARCHAR)", SqlIdent(c.name));
        break;
    }
    cols.push_back(std::move(x));
  };
  if (request.columns.empty()) {
    for (const ColumnSpec& c : spec->columns) {
      if (c.name == time_name || c.name == "dt" || c.type == ColumnType::kTimestamp ||
          c.type == ColumnType::kDate) {
        continue;
      }
      add(c);
    }
  } else {
    std::set<std::string> seen;
    for (const std::string& name : request.columns) {
      if (!seen.insert(name).second) continue;
      const ColumnSpec* c = spec->FindColumn(name);
      if (c == nullptr) {
        std::string known;
        for (const auto& k : spec->columns) known += (known.empty() ? "" : ", ") + k.name;
        return NotFoundError(fmt::format("table '{}' has no column '{}' (its columns: {})",
                                         request.table, name, known));
      }
      add(*c);
    }
  }
  if (cols.empty()) {
    return InvalidArgumentError(fmt::format(
        "table '{}' has no numeric or categorical column to compare besides its time column '{}' "
        "(name timestamp or date columns with --columns to compare them)",
        request.table, time_name));
  }

  DriftReport report;
  report.table = request.table;
  report.reference = ref.text;
  report.current = cur.text;
  report.thresholds = config.drift;
  const std::string table = SqlIdent(request.table);
  auto empty_window = [&](const DriftWindow& w, const std::string& which) {
    return FailedPreconditionError(fmt::format(
        "the {} window {} of table '{}' has no rows ({} from {} to {}{}): pick a window with data "
        "(`engage tables {}` shows its partitions)",
        which, w.text, request.table, time_name, w.start, w.end_inclusive ? "" : "before ", w.end,
        request.table));
  };

  // Query 1: the reference's sample: quantiles of the numeric columns, top categories.
  std::string inner, aggs = "count(*)";
  for (size_t j = 0; j < cols.size(); ++j) {
    inner += fmt::format("{}{} AS c{}", j ? ", " : "", cols[j].expr, j);
    if (cols[j].numeric) {
      aggs += fmt::format(", engage_quantiles(c{}, {})", j, kGridSteps);
    } else {
      aggs += fmt::format(", to_json(approx_top_k(c{}, {}))", j, kTopCategories);
    }
  }
  ENGAGE_ASSIGN_OR_RETURN(
      lake::DuckResult q1,
      engine.RunTrusted(fmt::format("SELECT {} FROM (SELECT {} FROM {} WHERE {}) __w", aggs, inner,
                                    table, ref.Condition(time_col)),
                        "drift"));
  if (q1.RowCount() < 1 || q1.Int(0, 0) == 0) return empty_window(ref, "reference");
  for (size_t j = 0; j < cols.size(); ++j) {
    Compared& c = cols[j];
    ENGAGE_ASSIGN_OR_RETURN(Json v,
                            JsonCell(q1, static_cast<int>(j) + 1, 0, "the reference's sample"));
    if (c.numeric) {
      std::vector<double> q;
      if (v.is_array()) {
        for (const Json& x : v) q.push_back(x.is_number() ? x.get<double>() : NAN);
      }
      for (double x : q) {
        if (std::isfinite(x)) c.edges.push_back(x);
      }
      std::sort(c.edges.begin(), c.edges.end());
      c.edges.erase(std::unique(c.edges.begin(), c.edges.end()), c.edges.end());
      for (int i = kGridSteps / 10; i < kGridSteps && static_cast<size_t>(i) <= q.size();
           i += kGridSteps / 10) {
        double x = q[static_cast<size_t>(i - 1)];
        if (std::isfinite(x)) c.deciles.push_back(x);
      }
      c.deciles.erase(std::unique(c.deciles.begin(), c.deciles.end()), c.deciles.end());
    } else if (v.is_array()) {
      for (const Json& x : v) {
        if (x.is_string()) c.categories.push_back(x.get<std::string>());
      }
    }
  }

  // Query 2: every column of both windows binned, in one pass per window.
  auto window_select = [&](int w, const DriftWindow& win) {
    std::string a = fmt::format("{} AS w, count(*)", w);
    for (size_t j = 0; j < cols.size(); ++j) {
      const Compared& c = cols[j];
      if (c.numeric) {
        a += fmt::format(", engage_bin_counts(c{}, {})", j, SqlEdges(c.edges));
      } else {
        a += fmt::format(", engage_category_counts(c{}, {})", j,
                         SqlQuote(DumpJson(Json(c.categories))));
      }
    }
    return fmt::format("SELECT {} FROM (SELECT {} FROM {} WHERE {}) __w", a, inner, table,
                       win.Condition(time_col));
  };
  ENGAGE_ASSIGN_OR_RETURN(
      lake::DuckResult q2,
      engine.RunTrusted(window_select(0, ref) + " UNION ALL " + window_select(1, cur), "drift"));
  // Per window: rows, then per column its bins (JSON): the numbers' bins, or the categories'
  // counts and then "other".
  struct Side {
    int64_t rows = 0;
    std::vector<std::vector<int64_t>> bins;
  };
  Side sides[2];
  for (int64_t row = 0; row < q2.RowCount(); ++row) {
    Side& s = sides[q2.Int(0, row) == 0 ? 0 : 1];
    s.rows = q2.Int(1, row);
    for (size_t j = 0; j < cols.size(); ++j) {
      ENGAGE_ASSIGN_OR_RETURN(Json b,
                              JsonCell(q2, 2 + static_cast<int>(j), row, "a column's bins"));
      std::vector<int64_t> counts;
      if (b.is_array()) {
        for (const Json& x : b) counts.push_back(x.is_number() ? x.get<int64_t>() : 0);
      }
      size_t want = cols[j].numeric ? cols[j].edges.size() + 1 : cols[j].categories.size() + 1;
      counts.resize(want, 0);
      s.bins.push_back(std::move(counts));
    }
  }
  if (sides[0].rows == 0) return empty_window(ref, "reference");
  if (sides[1].rows == 0) return empty_window(cur, "current");
  report.reference_rows = sides[0].rows;
  report.current_rows = sides[1].rows;
  for (size_t j = 0; j < cols.size(); ++j) {
    const Compared& c = cols[j];
    report.columns.push_back(
        c.numeric ? CompareNumeric(c.name, c.edges, c.deciles, sides[0].bins[j], sides[0].rows,
                                   sides[1].bins[j], sides[1].rows, config.drift)
                  : CompareCategorical(c.name, sides[0].bins[j], sides[0].rows, sides[1].bins[j],
                                       sides[1].rows, config.drift));
  }
  report.Decide();
  return report;
}

}  // namespace engage::monitor
