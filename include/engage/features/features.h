// Point-in-time features and engagement labels from the lake's events ([engagement] in
// engage.toml).
//
//   ENGAGE_ASSIGN_OR_RETURN(auto engine, sql::QueryEngine::Open(*lake));
//   FeatureBuilder builder(*engine, lake->config().engagement);
//   ENGAGE_ASSIGN_OR_RETURN(std::string end, builder.DataEnd());
//   ENGAGE_ASSIGN_OR_RETURN(FeatureFrame f, builder.Build({"2024-11-01"}));
//
// Features at cutoff t (a day, 00:00 UTC) read only events with time < t, and only within
// lookback_days before t: recency, frequency and monetary value per window, active days, the
// last 30 days against the 30 before, counts per event type and channel, tenure, days since
// signup, customer attributes (numbers as they are, `allowed` strings one-hot, times as days
// before t) and user SQL features. The label at t is 1 when the customer has a qualifying event
// in [t, t + horizon_days), 0 when not, and NaN when the data ends before t + horizon_days.
// Every query filters on the partition column dt, so only the partitions needed are read.
//
// Thread-safety: a FeatureBuilder uses its QueryEngine, one thread at a time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engage/core/config.h"
#include "engage/core/json.h"
#include "engage/core/status.h"
#include "engage/sql/query.h"

namespace engage::features {

// Feature values by column, NaN for missing, one row per (customer, cutoff).
struct FeatureFrame {
  std::vector<std::string> names;
  std::vector<std::vector<float>> columns;  // columns[j][row]
  std::vector<std::string> customer_ids;
  std::vector<std::string> cutoffs;  // YYYY-MM-DD per row
  std::vector<float> labels;         // 1, 0 or NaN (not yet known)

  int64_t rows() const { return static_cast<int64_t>(customer_ids.size()); }
  // Index of a feature column, or -1.
  int Find(const std::string& name) const;
  // Adds a column (values.size() must equal rows()).
  Status AddColumn(const std::string& name, std::vector<float> values);
  // Row-major copy of the feature values, for XGBoost.
  std::vector<float> RowMajor() const;
  // Appends the rows of `other` (same columns, in the same order).
  Status Append(FeatureFrame other);
  // The rows as CSV: customer_id, cutoff, label, then the features (missing values empty).
  std::string ToCsv() const;
  // {"rows", "labelled", "positive_rate", "features": [{"name", "missing" (share), "mean"}]}
  Json Summary() const;
  // The summary for people: per feature its missing share and mean, then the rows, cutoffs,
  // labelled rows and positive rate.
  std::string SummaryText() const;
};

class FeatureBuilder {
 public:
  FeatureBuilder(sql::QueryEngine& engine, EngagementConfig config)
      : engine_(engine), config_(std::move(config)) {}

  // The day after the last event (YYYY-MM-DD): the cutoff for scoring "now". kNotFound when the
  // events table is unknown, kFailedPrecondition when it has no events.
  Result<std::string> DataEnd();
  // The training cutoffs, oldest first: the latest t with t + horizon <= DataEnd(), and
  // training_cutoffs - 1 earlier ones, cutoff_step_days apart.
  Result<std::vector<std::string>> TrainingCutoffs();
  // Refuses cutoffs at which no customer has history: no event before the cutoff, or every
  // event more than lookback_days before it. kInvalidArgument naming the cutoff and the events'
  // dates ("cutoff 2030-01-01 is outside the events' dates 2024-01-02 .. 2024-12-31 ...") or a
  // malformed date; kFailedPrecondition when there are no events.
  Status CheckCutoffs(const std::vector<std::string>& cutoffs);
  // The cutoffs a request names: `requested` (each once, sorted, checked by CheckCutoffs), the
  // training cutoffs
  // (`training`; kInvalidArgument with `requested` too), or else DataEnd().
  Result<std::vector<std::string>> Cutoffs(const std::vector<std::string>& requested,
                                           bool training);

  // Features and labels at each cutoff, rows ordered by cutoff then customer id. Errors name
  // the table, column or user feature involved: kNotFound (table, column), kInvalidArgument (a
  // bad date or user SQL).
  Result<FeatureFrame> Build(const std::vector<std::string>& cutoffs);

  // The SQL run for one cutoff (for --explain and tests).
  Result<std::string> Sql(const std::string& cutoff);

 private:
  Status Resolve();
  sql::QueryEngine& engine_;
  EngagementConfig config_;
  bool resolved_ = false;
  std::string time_column_;
  bool has_customers_ = false;
  std::vector<const ColumnSpec*> attributes_;  // customers table columns used as features
};

// Days since 1970-01-01 of a YYYY-MM-DD date, and back; kInvalidArgument naming `text`.
Result<int64_t> ParseDay(const std::string& text);
std::string FormatDay(int64_t days);

}  // namespace engage::features
