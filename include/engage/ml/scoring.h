// Batch scoring: every customer at the latest cutoff (the day after the last event), scored by
// a registered engagement model, written to the lake's `predictions` table (partitioned by the
// scoring date) with a segment, the BG/NBD and Gamma-Gamma outputs, the top reasons and the
// model version.
//
//   ENGAGE_ASSIGN_OR_RETURN(ScoreReport r, ScoreAll(*lake, *engine, *registry, options));
//
// Thread-safety: one thread at a time; the lake must be open as writer (the scores are
// ingested like any other data: atomically, and idempotently for the same content).
#pragma once

#include <functional>
#include <map>
#include <string>

#include "engage/core/json.h"
#include "engage/lake/lake.h"
#include "engage/ml/registry.h"
#include "engage/sql/query.h"

namespace engage::ml {

struct ScoreOptions {
  std::string model = "engagement@champion";  // name, name@version or name@alias
  std::string cutoff;                         // YYYY-MM-DD; empty: the day after the last event
  bool reasons = true;                        // top 3 reasons per customer (SHAP contributions)
  int nthread = 0;
  std::function<void(const std::string&)> stage;
};

struct ScoreReport {
  std::string model;
  int64_t version = 0;
  std::string cutoff;
  std::string scored_at;
  int64_t customers = 0;
  std::map<std::string, int64_t> segments;
  double mean_score = 0;
  double features_seconds = 0;
  double predict_seconds = 0;  // the XGBoost part
  double reasons_seconds = 0;
  double write_seconds = 0;
  std::string ingest_id;
  Json ToJson() const;
  // What `engage score` prints: the run, a table of segments and the time of each part.
  std::string ToText() const;
};

// Names the segment of `score` from the thresholds of `config`.
std::string Segment(const EngagementConfig& config, double score);

// kNotFound for an unknown model or alias; kFailedPrecondition when the model was trained on
// features the current configuration does not produce (named in the message).
Result<ScoreReport> ScoreAll(lake::Lake& lake, sql::QueryEngine& engine, ModelRegistry& registry,
                             const ScoreOptions& options);

}  // namespace engage::ml
