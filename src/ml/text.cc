// Renderings of ml's results for people (the CLI prints them) and the small helpers the commands
// and routes share: the gate from the config, version references.
#include "engage/core/text.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <string>
#include <vector>

#include "engage/ml/btyd.h"
#include "engage/ml/registry.h"
#include "engage/ml/scoring.h"

namespace engage::ml {

namespace {

std::string Fixed4(const std::optional<double>& v) {
  return v ? fmt::format("{:.4f}", *v) : std::string("-");
}

}  // namespace

PromotionGate PromotionGate::FromConfig(const ModelsConfig& models) {
  PromotionGate gate;
  gate.metric = models.promotion_metric;
  gate.min_value = models.min_quality;
  gate.min_improvement = models.min_improvement;
  return gate;
}

Json AliasChange::ToJson() const {
  return Json{{"model", model},
              {"alias", alias},
              {"version", version},
              {"previous", previous ? Json(*previous) : Json()}};
}

std::string AliasChange::ToText() const {
  return fmt::format("{}@{} -> version {}{}\n", model, alias, version,
                     previous ? fmt::format(" (was {})", *previous) : "");
}

std::string PromotionDecision::ToText(const std::string& name, int64_t version) const {
  return fmt::format("{} {}@{}: {}\n", promoted ? "promoted" : "not promoted", name, version,
                     reason);
}

Json VersionsSummaryJson(const std::vector<ModelVersion>& versions) {
  Json out = Json::array();
  for (const auto& v : versions) {
    Json j = v.ToJson();
    j.erase("card");
    j["metrics"] = v.card.contains("metrics") ? v.card["metrics"]["valid"] : Json();
    out.push_back(std::move(j));
  }
  return out;
}

std::string VersionsTable(const std::vector<ModelVersion>& versions) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& v : versions) {
    std::string aliases;
    for (const auto& a : v.aliases) aliases += (aliases.empty() ? "" : ",") + a;
    rows.push_back({v.name, std::to_string(v.version), v.created_at, aliases,
                    Fixed4(v.Metric("auc")), Fixed4(v.Metric("pr_auc")),
                    Fixed4(v.Metric("log_loss"))});
  }
  return FormatTable({"model", "version", "created", "aliases", "auc", "pr_auc", "log_loss"}, rows);
}

Result<std::string> VersionRef(const std::string& model, const std::string& version) {
  if (version.empty()) return model;
  size_t at = model.find('@');
  if (at != std::string::npos) {
    std::string name = model.substr(0, at);
    return InvalidArgumentError(fmt::format(
        "give the version once: `engage models promote {} {}` or `engage models promote {}@{}`",
        name, version, name, version));
  }
  return model + "@" + version;
}

Result<ModelVersion> ModelRegistry::ResolveIn(const std::string& model, const std::string& ref) {
  bool bare = ref.find('@') == std::string::npos && !IsValidIdentifier(ref);
  return Resolve(bare ? model + "@" + ref : ref);
}

std::string ScoreReport::ToText() const {
  std::string out =
      fmt::format("scored {} customers at {} with {}@{} (mean score {:.4f}); ingest {}\n",
                  customers, cutoff, model, version, mean_score, ingest_id);
  std::vector<std::vector<std::string>> rows;
  for (const auto& [name, n] : segments) {
    rows.push_back({name, std::to_string(n),
                    fmt::format("{:.1f}%", customers > 0 ? 100.0 * n / customers : 0)});
  }
  out += FormatTable({"segment", "customers", "share"}, rows);
  out += fmt::format(
      "features {:.2f} s, XGBoost {:.3f} s ({:.0f} customers/s), reasons {:.2f} s, write "
      "{:.2f} s\n",
      features_seconds, predict_seconds, predict_seconds > 0 ? customers / predict_seconds : 0.0,
      reasons_seconds, write_seconds);
  return out;
}

Json BtydAnalysis::ToJson(size_t shown) const {
  Json j = fits.ToJson();
  j["table"] = request.table;
  j["calibration_end"] = request.calibration_end;
  j["time_unit"] = time_unit();
  j["transaction_types"] = request.types;  // empty: every row is a transaction
  j["customers"] = static_cast<int64_t>(customers.size());
  if (horizon > 0) {
    j["horizon"] = horizon;
    j["predictions"] = Json::array();
    for (size_t i = 0; i < shown && i < predictions.size(); ++i) {
      j["predictions"].push_back(predictions[i].ToJson());
    }
  }
  return j;
}

std::string BtydAnalysis::ToText(size_t shown) const {
  if (horizon <= 0) {
    return fmt::format(
        "{} customers, calibration to {}, time in {}s, transactions: {}\n\n{}", customers.size(),
        request.calibration_end.empty() ? "the last event" : request.calibration_end, time_unit(),
        request.types.empty()
            ? "every row"
            : fmt::format("{} in {}", request.type_column, fmt::join(request.types, ", ")),
        fits.ToText());
  }
  const BgNbdParams& p = fits.bgnbd.params;
  std::string out =
      fmt::format("BG/NBD r={:.4f} alpha={:.4f} a={:.4f} b={:.4f}; horizon {:g} {}s\n", p.r,
                  p.alpha, p.a, p.b, horizon, time_unit());
  if (shown == 0) return out;
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < shown && i < predictions.size(); ++i) {
    const BtydPrediction& b = predictions[i];
    rows.push_back({b.customer->customer_id, fmt::format("{}", b.customer->x), Fixed4(b.p_alive),
                    Fixed4(b.expected_transactions), Fixed4(b.expected_spend), Fixed4(b.clv)});
  }
  out += FormatTable(
      {"customer_id", "x", "p_alive", "expected_transactions", "expected_spend", "clv"}, rows);
  if (predictions.size() > shown) {
    out += fmt::format("({} of {} customers; --out FILE writes all)\n", shown, predictions.size());
  }
  return out;
}

}  // namespace engage::ml
