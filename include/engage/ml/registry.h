// The model registry: every trained model version with its card and lineage, and aliases
// (champion, challenger, ...) moved only through a promotion gate.
//
//   ENGAGE_ASSIGN_OR_RETURN(auto reg, ModelRegistry::Open(home, clock));
//   ENGAGE_ASSIGN_OR_RETURN(ModelVersion v, reg->Register("engagement", model_json, card,
//   lineage)); ENGAGE_ASSIGN_OR_RETURN(PromotionDecision d, reg->Promote("engagement", v.version,
//   gate));
//
// Layout: <home>/models/<name>/<version>/model.json (XGBoost JSON) and card.json (the model
// card: params, data window, cutoffs, features, metrics, training time, lineage). The rows in
// meta.db (model_versions, model_aliases, model_lineage) index them. A version directory is
// written under a temporary name, fsynced and renamed into place before its row is committed,
// so a version listed in meta.db is always complete; a directory without a row (a killed
// Register) is ignored and replaced by the next Register of that version number.
//
// Thread-safety: one ModelRegistry per thread; several processes may share the home (versions
// are numbered inside a meta.db transaction).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engage/core/clock.h"
#include "engage/core/config.h"
#include "engage/core/home.h"
#include "engage/core/json.h"
#include "engage/core/sqlite.h"
#include "engage/core/status.h"
#include "engage/sql/query.h"

namespace engage::ml {

// What a model version was built from (ingest ids, tables, the execution that trained it).
struct LineageRef {
  std::string kind;  // "ingest" | "table" | "execution" | ...
  std::string ref;
};

struct ModelVersion {
  std::string name;
  int64_t version = 0;
  std::string created_at;  // ISO-8601 UTC
  std::string dir;         // absolute path of the version directory
  Json card;               // card.json
  std::vector<std::string> aliases;
  std::vector<LineageRef> lineage;

  std::string model_path() const { return dir + "/model.json"; }
  // The metric the gate compares: card.metrics.valid.<metric>; nullopt when absent.
  std::optional<double> Metric(const std::string& metric) const;
  // card.kind ("engagement", "table"); "" when absent.
  std::string kind() const;
  // card.fingerprint (see Register); "" for versions registered without one.
  std::string fingerprint() const;
  Json ToJson() const;
  // A few aligned lines for people: name@version and aliases, created, kind, metrics, params,
  // data window, training, fingerprint.
  std::string ToText() const;
};

// The fingerprint of a training: the SHA-256 (hex) of `identity`'s canonical JSON text (keys
// sorted at every level), where `identity` holds everything the trained model depends on (see
// LakeTablesIdentity).
std::string Fingerprint(const Json& identity);

// What a training reads of the lake's `tables`, for its fingerprint: per table its catalogued files
// (path, rows, bytes: files are never rewritten in place, so new data or a compaction changes
// them), read on the engine's own catalog connection, and its configured columns (name, type,
// allowed values). Errors from the catalog.
Result<Json> LakeTablesIdentity(sql::QueryEngine& engine, const std::vector<std::string>& tables);

// ModelRegistry::Diff as a few lines for people.
std::string DiffToText(const Json& diff);

// Versions as `engage models list` shows them: each ToJson() without its card but with its
// validation metrics ("metrics"); and a table of name, version, created, aliases, AUC, PR-AUC
// and log-loss.
Json VersionsSummaryJson(const std::vector<ModelVersion>& versions);
std::string VersionsTable(const std::vector<ModelVersion>& versions);

// A version reference from a command line's one or two words: "name@3" alone, or "name" and "3"
// (`engage models promote NAME N`). kInvalidArgument when the version is given twice.
Result<std::string> VersionRef(const std::string& model, const std::string& version);

// The promotion gate ([models] in engage.toml).
struct PromotionGate {
  std::string metric = "auc";  // higher is better
  double min_value = 0.6;      // the quality bar
  double min_improvement = 0;  // over the current holder of the alias
  std::string alias = "champion";
  // The gate of [models] in engage.toml.
  static PromotionGate FromConfig(const ModelsConfig& models);
};

// An alias pointed at a version by hand (`engage models alias`).
struct AliasChange {
  std::string model, alias;
  int64_t version = 0;
  std::optional<int64_t> previous;  // the version that held it
  Json ToJson() const;              // {"model", "alias", "version", "previous"}
  std::string ToText() const;       // "engagement@challenger -> version 3 (was 2)"
};

struct PromotionDecision {
  bool promoted = false;
  std::string reason;
  std::optional<int64_t> previous;  // version that held the alias
  Json ToJson() const;
  // "promoted name@3: reason" or "not promoted name@3: reason".
  std::string ToText(const std::string& name, int64_t version) const;
};

class ModelRegistry {
 public:
  static Result<std::unique_ptr<ModelRegistry>> Open(const HomePaths& home, const Clock& clock);

  // Stores a new version (number = last + 1) with the XGBoost JSON text and its card (the
  // registry adds name, version, created_at). kInvalidArgument for a bad name. A card with a
  // "kind" must match the kind of the model's versions (kFailedPrecondition otherwise), and a
  // card with a "fingerprint" that a version of `name` already has is not stored again:
  // kAlreadyExists naming that version (checked in the same transaction as the numbering).
  Result<ModelVersion> Register(const std::string& name, const std::string& model_json, Json card,
                                const std::vector<LineageRef>& lineage);

  // Before training a `kind` model `name`: the version already registered with `fingerprint`
  // (the newest, if several), or nullopt. kInvalidArgument for a bad name, kFailedPrecondition
  // when `name` holds models of another kind. Training can then be skipped.
  Result<std::optional<ModelVersion>> FindIdentical(const std::string& name,
                                                    const std::string& kind,
                                                    const std::string& fingerprint);

  // "name", "name@3" or "name@champion". kInvalidArgument for a malformed reference ("name@",
  // "name@0", "name@-1", a version beyond int64, an alias that is not an identifier); kNotFound
  // naming what is missing and what to run next.
  Result<ModelVersion> Resolve(const std::string& ref);
  // As Resolve, where a bare version ("3", not a model's name) is a version of `model`.
  Result<ModelVersion> ResolveIn(const std::string& model, const std::string& ref);
  Result<ModelVersion> Get(const std::string& name, int64_t version);
  // Every version of `name` (all models when empty), newest first.
  Result<std::vector<ModelVersion>> List(const std::string& name);

  // Points `alias` at `version` unconditionally (operators' override; recorded). Returns the
  // version that held the alias before, if any. kInvalidArgument for a bad alias, kNotFound for an
  // unknown version.
  Result<std::optional<int64_t>> SetAlias(const std::string& name, const std::string& alias,
                                          int64_t version);
  // Moves gate.alias to `version` only when its metric reaches gate.min_value and beats the
  // current holder by more than gate.min_improvement. Not promoting is not an error: the
  // decision says why. kNotFound for an unknown version.
  Result<PromotionDecision> Promote(const std::string& name, int64_t version,
                                    const PromotionGate& gate);

  // Differences between two versions: params, metrics, features, data window.
  Result<Json> Diff(const std::string& name, int64_t a, int64_t b);

 private:
  ModelRegistry(HomePaths home, SqliteDb db, const Clock& clock)
      : home_(std::move(home)), db_(std::move(db)), clock_(clock) {}
  Result<ModelVersion> Load(const std::string& name, int64_t version);
  // The newest version of `name`, or nullopt.
  Result<std::optional<int64_t>> Latest(const std::string& name);
  HomePaths home_;
  SqliteDb db_;
  const Clock& clock_;
};

}  // namespace engage::ml
