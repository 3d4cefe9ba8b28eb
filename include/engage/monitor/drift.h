// Drift: how far the distribution of each column moved between a reference and a current window
// of a table (or between a model's training and its latest scoring run, see app::App::Drift),
// and whether the dataset as a whole drifted.
//
//   DriftRequest request{.table = "events",
//                        .reference = "2024-01-01..2024-01-31",
//                        .current = "2024-02-01..2024-02-29"};
//   ENGAGE_ASSIGN_OR_RETURN(DriftReport r, TableDrift(engine, request));
//   if (r.dataset_drift) { ... raise an alert ... }
//
// Per column:
// - numeric (int64, double): PSI over the reference's deciles; the two-sample Kolmogorov-Smirnov
//   statistic on a grid of the reference's 199 half-percentiles (the largest gap between the two
//   empirical distribution functions at those points: a lower bound of the exact statistic) and
//   its asymptotic p-value;
// - categorical (string, bool): PSI over the categories (the reference's 64 most frequent by
//   approx_top_k, the rest as one "other" category) and the chi-squared test of homogeneity (2 x k)
//   p-value;
// - every column: the Jensen-Shannon distance (base 2: 0 same, 1 disjoint) between the two
//   distributions (numeric: over the grid's bins) and the change of the missing rate.
// Missing values (NULL, NaN) are left out of the distributions and counted in the missing rate.
//
// Table drift runs two DuckDB queries whatever the number of columns: one over the reference
// window (its rows, each numeric column's quantiles from a 20,000-value sample, each categorical
// column's top categories) and one binning every column of both windows (engage_bin_counts,
// engage_category_counts: see sql/functions.h). Both filter on `dt` (so only the windows'
// partitions are read) and on the time column, and are metered and recorded in the query history
// (source "drift") like any query.
//
// Thread-safety: TableDrift uses the engine (one query at a time); the rest are pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engage/core/config.h"
#include "engage/core/json.h"
#include "engage/core/status.h"
#include "engage/sql/query.h"

namespace engage::monitor {

// A window "START..END", both ends inclusive: dates (YYYY-MM-DD, whole days) or timestamps
// (YYYY-MM-DDTHH:MM:SS, optionally with a trailing Z; UTC).
struct DriftWindow {
  std::string text;            // as given
  std::string start;           // SQL timestamp text, e.g. "2024-01-01 00:00:00" (inclusive)
  std::string end;             // likewise: exclusive for dates (the next day), else inclusive
  bool end_inclusive = false;  // true when the end was given as a timestamp
  std::string dt_from, dt_to;  // the partitions (dates, inclusive) the window may touch

  // The SQL condition that `column` (a timestamp or date expression) is in the window, with
  // the partition filter on dt.
  std::string Condition(const std::string& column) const;
};

// Parses `text` for the window called `which` ("reference", "current"). kInvalidArgument naming
// the window and what is wrong (no "..", a malformed or impossible date, end before start).
Result<DriftWindow> ParseDriftWindow(const std::string& text, const std::string& which);

struct ColumnDrift {
  std::string column;
  std::string kind;  // "numeric" or "categorical"
  // Missing when a window has no values in the column (all missing).
  std::optional<double> psi;
  std::optional<double> statistic;  // numeric: the KS statistic; categorical: chi-squared
  std::optional<double> p_value;
  std::optional<double> js;
  double reference_missing = 0;  // rates, 0..1
  double current_missing = 0;
  double missing_change = 0;  // current - reference
  bool drifted = false;
  std::string reason;  // why it drifted (which threshold), or "" when it did not
  // {"column", "kind", "psi", "statistic", "p_value", "js", "missing_change", "drifted", "reason",
  //  "reference_missing", "current_missing"} (null for missing statistics)
  Json ToJson() const;
};

struct DriftReport {
  std::string table;      // the table compared, or "" for a model
  std::string model;      // "name@version" for model drift
  std::string reference;  // what the reference is: the window as given, or the training
  std::string current;
  int64_t reference_rows = 0;
  int64_t current_rows = 0;
  DriftConfig thresholds;
  std::vector<ColumnDrift> columns;
  int64_t drifted_columns = 0;
  bool dataset_drift = false;
  // {"dataset_drift", "columns": [...], "table" or "model", "reference": {"window", "rows"},
  //  "current": {...}, "drifted_columns", "thresholds": {...}}
  Json ToJson() const;
  // An aligned table of the columns and a verdict line.
  std::string ToText() const;
  // Sets drifted_columns and dataset_drift from the columns and thresholds.
  void Decide();
};

struct DriftRequest {
  std::string table;
  std::string reference;  // window text, see ParseDriftWindow
  std::string current;
  std::vector<std::string> columns;  // empty: every numeric and categorical column
  std::string model;                 // app::App::Drift: compare this model instead of a table
};

// Compares two windows of `request.table` with the thresholds of the engine's config ([drift]).
// Errors: kNotFound for an unknown table or column (naming it); kInvalidArgument for a malformed
// window or a column that cannot be compared (naming it); kFailedPrecondition when a window has
// no rows (naming the window, the table and its time column); the engine's errors otherwise.
// Without --columns, the time column, dt, and timestamp/date columns are skipped; named in
// `columns`, a timestamp or date column is compared as a number (seconds since the epoch).
Result<DriftReport> TableDrift(sql::QueryEngine& engine, const DriftRequest& request);

// --- the statistics, on binned counts ---------------------------------------------------------

// Population stability index: sum over bins of (c - r) * ln(c / r), where r and c are the bins'
// shares of each side, each floored at 1e-4 so that an empty bin stays finite.
double Psi(const std::vector<double>& reference, const std::vector<double>& current);
// Jensen-Shannon distance (the square root of the divergence, in bits): 0..1.
double JensenShannonDistance(const std::vector<double>& reference,
                             const std::vector<double>& current);
// The largest gap between the two cumulative shares over the bins (the KS statistic at the
// bins' upper edges).
double GridKsStatistic(const std::vector<double>& reference, const std::vector<double>& current);
// The asymptotic p-value of a two-sample KS statistic `d` for samples of n and m: Q_KS((sqrt(e)
// + 0.12 + 0.11 / sqrt(e)) * d) with e = nm / (n + m) (Numerical Recipes' correction).
double KolmogorovSmirnovPValue(double d, int64_t n, int64_t m);
// The Kolmogorov distribution's survival function Q_KS(x) = 2 sum_{k>=1} (-1)^(k-1) e^(-2k²x²).
double KolmogorovSurvival(double x);
// Regularized upper incomplete gamma Q(a, x) (series or continued fraction).
double RegularizedGammaQ(double a, double x);
// P(X >= x) for X chi-squared with `df` degrees of freedom.
double ChiSquaredSurvival(double x, double df);

struct ChiSquaredTest {
  double statistic = 0;
  int64_t df = 0;
  double p_value = 1;
};
// Pearson's chi-squared test of homogeneity of a 2 x k table (categories empty on both sides are
// left out; df = k - 1). One category: statistic 0, p 1.
ChiSquaredTest ChiSquaredHomogeneity(const std::vector<double>& reference,
                                     const std::vector<double>& current);

// Counts of `values` in the bins of ascending `edges` (engage_bin_counts' bins: len(edges) + 1);
// NaN is not counted.
std::vector<int64_t> BinValues(const std::vector<double>& edges, const std::vector<float>& values);

// `edges` as engage_bin_counts' second argument (sql/functions.h): a SQL string literal of the
// doubles, comma-separated, each written so that it reads back as exactly the same double.
std::string SqlEdges(const std::vector<double>& edges);

// A numeric column compared from its bins: `edges` the reference's grid (ascending, distinct),
// `deciles` the reference's deciles (each one of `edges`), the counts per bin of each side
// (len(edges) + 1) and the rows of each side (values + missing).
ColumnDrift CompareNumeric(const std::string& column, const std::vector<double>& edges,
                           const std::vector<double>& deciles,
                           const std::vector<int64_t>& reference, int64_t reference_rows,
                           const std::vector<int64_t>& current, int64_t current_rows,
                           const DriftConfig& thresholds);
// A categorical column compared from the counts of the same categories on each side.
ColumnDrift CompareCategorical(const std::string& column, const std::vector<int64_t>& reference,
                               int64_t reference_rows, const std::vector<int64_t>& current,
                               int64_t current_rows, const DriftConfig& thresholds);

}  // namespace engage::monitor
