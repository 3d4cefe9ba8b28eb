// Synthetic customer events from a known latent process, so model checks know the best
// achievable AUC.
//
// Each customer has latent traits drawn once: a session rate (Gamma across customers), a
// per-session purchase probability (Beta), a dropout probability after each session (Beta, as in
// BG/NBD, so some customers silently churn), a log-normal spend level, channel preferences and
// an email-open rate. Sessions follow a Poisson process modulated by weekly seasonality from the
// customer's signup until dropout or the end of the window. A session emits a `session` event,
// page views, sometimes an add_to_cart and a purchase (log-normal amount); email opens and
// support contacts arrive separately.
//
// Output in `out_dir` (format parquet, csv or jsonl):
//   events/part-NNNNN.<ext>     event_id, customer_id, event_time, event_type, channel, amount,
//                               properties
//   customers.<ext>             customer_id, signup_time, country, acquisition_channel, plan, age
//   truth.parquet               customer_id, p_engage_30d (true probability of a purchase in the
//                               30 days after the window), engaged_next_30d (the simulated
//                               outcome), alive_at_end, the latent traits, and
//                               p_engage_bayes: the same probability as the best possible model
//                               of the events would estimate it, knowing the population the
//                               traits come from but not this customer's traits nor whether
//                               they have already dropped out (the oracle knows both)
// Customers are generated in batches, so memory stays bounded for any customer count.
// Deterministic for a given seed and options (not across thread counts of DuckDB, which only
// affects file layout, never values).
//
// Thread-safety: Generate() is reentrant; it uses its own DuckDB instance.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "engage/core/json.h"
#include "engage/core/status.h"

namespace engage::gen {

enum class OutputFormat { kParquet, kCsv, kJsonl };

Result<OutputFormat> ParseOutputFormat(const std::string& s);  // "parquet" | "csv" | "jsonl"
// GenOptions::end_day of `--end`: the day of a YYYY-MM-DD date, or with "" today's (UTC) from
// `now_micros`. kInvalidArgument for anything else.
Result<int64_t> ParseEndDay(const std::string& end, int64_t now_micros);

struct GenOptions {
  int64_t customers = 1000;
  int days = 365;
  uint64_t seed = 42;
  // Last day of the window (days since epoch, exclusive end at 00:00 UTC of this day).
  // Default: 2024-12-31 + 1, a fixed date so output does not depend on when it is run.
  int64_t end_day = 20089;
  OutputFormat format = OutputFormat::kParquet;
  std::string out_dir = "demo-data";
  int64_t customers_per_batch = 200000;
  int threads = 0;  // DuckDB writer threads; 0 = all cores
  // DuckDB's memory budget; beyond it the accumulated customers/truth tables spill to disk.
  std::string memory_limit = "2GB";
};

struct GenReport {
  int64_t customers = 0;
  int64_t events = 0;
  int64_t purchases = 0;
  int64_t alive_at_end = 0;
  double mean_p_engage = 0;  // mean of truth p_engage_30d
  double oracle_auc = 0;     // AUC of p_engage_30d against engaged_next_30d
  double bayes_auc = 0;      // AUC of p_engage_bayes: the best any model of the events can do
  int64_t files = 0;
  int64_t bytes = 0;
  double elapsed_s = 0;
  std::string out_dir;
  std::string first_day;  // YYYY-MM-DD
  std::string last_day;

  Json ToJson() const;
  std::string ToText() const;  // what was generated, where, and the AUCs to beat
};

// Writes the data set described above. `progress(customers_done)` is called after each batch.
// kInvalidArgument for bad options (customers < 1, days < 1), kAlreadyExists if `out_dir`
// already holds generated data (events/ present), I/O errors naming the path.
Result<GenReport> Generate(const GenOptions& opts,
                           const std::function<void(int64_t)>& progress = nullptr);

}  // namespace engage::gen
