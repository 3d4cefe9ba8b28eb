#include "engage/ml/registry.h"

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "engage/core/config.h"
#include "engage/core/fs.h"

namespace engage::ml {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS model_versions (
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  card TEXT NOT NULL,
  PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS model_aliases (
  name TEXT NOT NULL,
  alias TEXT NOT NULL,
  version INTEGER NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (name, alias),
  FOREIGN KEY (name, version) REFERENCES model_versions(name, version)
);
-- Every alias move, including refused promotions: the audit trail of what served when.
CREATE TABLE IF NOT EXISTS model_alias_history (
  name TEXT NOT NULL,
  alias TEXT NOT NULL,
  version INTEGER NOT NULL,
  previous INTEGER,
  promoted INTEGER NOT NULL,
  reason TEXT NOT NULL,
  at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS model_lineage (
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  kind TEXT NOT NULL,
  ref TEXT NOT NULL,
  FOREIGN KEY (name, version) REFERENCES model_versions(name, version)
);
)sql";

Status CheckName(const std::string& name, const char* what) {
  if (!IsValidIdentifier(name)) {
    return InvalidArgumentError(
        fmt::format("{} '{}' must match [a-z_][a-z0-9_]{{0,62}}", what, name));
  }
  return Status::Ok();
}

}  // namespace

std::optional<double> ModelVersion::Metric(const std::string& metric) const {
  const Json* m = &card;
  for (const char* key : {"metrics", "valid"}) {
    if (!m->is_object() || !m->contains(key)) return std::nullopt;
    m = &(*m)[key];
  }
  if (!m->is_object() || !m->contains(metric) || !(*m)[metric].is_number()) return std::nullopt;
  return (*m)[metric].get<double>();
}

Json ModelVersion::ToJson() const {
  Json j = Json::object();
  j["name"] = name;
  j["version"] = version;
  j["created_at"] = created_at;
  j["aliases"] = aliases;
  j["path"] = dir;
  Json lin = Json::array();
  for (const auto& l : lineage) lin.push_back(Json{{"kind", l.kind}, {"ref", l.ref}});
  j["lineage"] = std::move(lin);
  j["card"] = card;
  return j;
}

Json PromotionDecision::ToJson() const {
  Json j = Json::object();
  j["promoted"] = promoted;
  j["reason"] = reason;
  j["previous"] = previous ? Json(*previous) : Json();
  return j;
}

Result<std::unique_ptr<ModelRegistry>> ModelRegistry::Open(const HomePaths& home,
                                                           const Clock& clock) {
  ENGAGE_ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(home.meta_db()));
  ENGAGE_RETURN_IF_ERROR(db.Exec(kSchema));
  return std::unique_ptr<ModelRegistry>(new ModelRegistry(home, std::move(db), clock));
}

Result<ModelVersion> ModelRegistry::Register(const std::string& name, const std::string& model_json,
                                             Json card, const std::vector<LineageRef>& lineage) {
  ENGAGE_RETURN_IF_ERROR(CheckName(name, "model name"));
  if (!card.is_object()) return InvalidArgumentError("a model card must be a JSON object");
  ENGAGE_ASSIGN_OR_RETURN(auto txn, SqliteTxn::Begin(db_));
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt last,
      db_.Prepare("SELECT COALESCE(MAX(version), 0) FROM model_versions WHERE name = ?"));
  last.Bind(1, name);
  ENGAGE_ASSIGN_OR_RETURN(bool row, last.Step());
  int64_t version = (row ? last.Int(0) : 0) + 1;
  std::string created = FormatIsoUtc(clock_.NowMicros());
  card["name"] = name;
  card["version"] = version;
  card["created_at"] = created;
  Json lin = Json::array();
  for (const auto& l : lineage) lin.push_back(Json{{"kind", l.kind}, {"ref", l.ref}});
  card["lineage"] = lin;

  // The version directory: written whole under a temporary name, then renamed into place.
  PosixFileSystem fs;
  std::string model_dir = home_.models() + "/" + name;
  std::string final_dir = fmt::format("{}/{}", model_dir, version);
  std::string tmp_dir = fmt::format("{}/.tmp-{}-{}", model_dir, version, ::getpid());
  ENGAGE_RETURN_IF_ERROR(fs.RemoveAll(tmp_dir));
  ENGAGE_RETURN_IF_ERROR(fs.CreateDirs(tmp_dir));
  Cleanup remove_tmp([&] { (void)fs.RemoveAll(tmp_dir); });
  ENGAGE_RETURN_IF_ERROR(fs.WriteFileAtomic(tmp_dir + "/model.json", model_json));
  ENGAGE_RETURN_IF_ERROR(fs.WriteFileAtomic(tmp_dir + "/card.json", DumpJson(card, 2) + "\n"));
  // A directory without a row is what a killed Register left: replace it.
  ENGAGE_RETURN_IF_ERROR(fs.RemoveAll(final_dir));
  ENGAGE_RETURN_IF_ERROR(fs.Rename(tmp_dir, final_dir));
  ENGAGE_RETURN_IF_ERROR(fs.SyncDir(model_dir));

  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt ins, db_.Prepare("INSERT INTO model_versions (name, version, created_at, card) "
                                  "VALUES (?, ?, ?, ?)"));
  ins.Bind(1, name).Bind(2, version).Bind(3, created).Bind(4, DumpJson(card));
  ENGAGE_RETURN_IF_ERROR(ins.Run());
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt lin_ins,
      db_.Prepare("INSERT INTO model_lineage (name, version, kind, ref) VALUES (?, ?, ?, ?)"));
  for (const auto& l : lineage) {
    lin_ins.Reset();
    lin_ins.Bind(1, name).Bind(2, version).Bind(3, l.kind).Bind(4, l.ref);
    ENGAGE_RETURN_IF_ERROR(lin_ins.Run());
  }
  ENGAGE_RETURN_IF_ERROR(txn->Commit());
  return Load(name, version);
}

Result<ModelVersion> ModelRegistry::Load(const std::string& name, int64_t version) {
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db_.Prepare("SELECT created_at, card FROM model_versions WHERE name = ? AND version = ?"));
  st.Bind(1, name).Bind(2, version);
  ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) {
    return NotFoundError(
        fmt::format("model '{}' has no version {} (see engage models list)", name, version));
  }
  ModelVersion v;
  v.name = name;
  v.version = version;
  v.created_at = st.Text(0);
  v.card = Json::parse(st.Text(1), nullptr, false);
  if (v.card.is_discarded()) v.card = Json::object();
  v.dir = fmt::format("{}/{}/{}", home_.models(), name, version);
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt al,
      db_.Prepare("SELECT alias FROM model_aliases WHERE name = ? AND version = ? ORDER BY 1"));
  al.Bind(1, name).Bind(2, version);
  while (true) {
    ENGAGE_ASSIGN_OR_RETURN(bool more, al.Step());
    if (!more) break;
    v.aliases.push_back(al.Text(0));
  }
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt li,
      db_.Prepare("SELECT kind, ref FROM model_lineage WHERE name = ? AND version = ? ORDER BY "
                  "rowid"));
  li.Bind(1, name).Bind(2, version);
  while (true) {
    ENGAGE_ASSIGN_OR_RETURN(bool more, li.Step());
    if (!more) break;
    v.lineage.push_back(LineageRef{li.Text(0), li.Text(1)});
  }
  return v;
}

Result<ModelVersion> ModelRegistry::Get(const std::string& name, int64_t version) {
  return Load(name, version);
}

Result<ModelVersion> ModelRegistry::Resolve(const std::string& ref) {
  size_t at = ref.find('@');
  std::string name = ref.substr(0, at);
  ENGAGE_RETURN_IF_ERROR(CheckName(name, "model name"));
  if (at == std::string::npos) {
    ENGAGE_ASSIGN_OR_RETURN(SqliteStmt st,
                            db_.Prepare("SELECT MAX(version) FROM model_versions WHERE name = ?"));
    st.Bind(1, name);
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row || st.IsNull(0)) {
      return NotFoundError(fmt::format("no model named '{}' (see engage models list)", name));
    }
    return Load(name, st.Int(0));
  }
  std::string which = ref.substr(at + 1);
  if (!which.empty() && which.find_first_not_of("0123456789") == std::string::npos) {
    return Load(name, std::stoll(which));
  }
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st, db_.Prepare("SELECT version FROM model_aliases WHERE name = ? AND alias = ?"));
  st.Bind(1, name).Bind(2, which);
  ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) {
    return NotFoundError(fmt::format("model '{}' has no alias '{}'", name, which));
  }
  return Load(name, st.Int(0));
}

Result<std::vector<ModelVersion>> ModelRegistry::List(const std::string& name) {
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db_.Prepare(name.empty() ? "SELECT name, version FROM model_versions ORDER BY name, "
                                 "version DESC"
                               : "SELECT name, version FROM model_versions WHERE name = ? "
                                 "ORDER BY version DESC"));
  if (!name.empty()) st.Bind(1, name);
  std::vector<std::pair<std::string, int64_t>> keys;
  while (true) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    keys.emplace_back(st.Text(0), st.Int(1));
  }
  if (!name.empty() && keys.empty()) {
    return NotFoundError(fmt::format("no model named '{}' (see engage models list)", name));
  }
  std::vector<ModelVersion> out;
  for (const auto& [n, v] : keys) {
    ENGAGE_ASSIGN_OR_RETURN(ModelVersion mv, Load(n, v));
    out.push_back(std::move(mv));
  }
  return out;
}

namespace {

Status MoveAlias(SqliteDb& db, const std::string& name, const std::string& alias, int64_t version,
                 const std::string& at) {
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db.Prepare("INSERT INTO model_aliases (name, alias, version, updated_at) VALUES (?, ?, ?, "
                 "?) ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version, "
                 "updated_at = excluded.updated_at"));
  st.Bind(1, name).Bind(2, alias).Bind(3, version).Bind(4, at);
  return st.Run();
}

Status RecordAliasChange(SqliteDb& db, const std::string& name, const std::string& alias,
                         int64_t version, std::optional<int64_t> previous, bool promoted,
                         const std::string& reason, const std::string& at) {
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db.Prepare("INSERT INTO model_alias_history (name, alias, version, previous, promoted, "
                 "reason, at) VALUES (?, ?, ?, ?, ?, ?, ?)"));
  st.Bind(1, name).Bind(2, alias).Bind(3, version);
  if (previous) {
    st.Bind(4, *previous);
  } else {
    st.BindNull(4);
  }
  st.Bind(5, static_cast<int64_t>(promoted ? 1 : 0)).Bind(6, reason).Bind(7, at);
  return st.Run();
}

}  // namespace

Status ModelRegistry::SetAlias(const std::string& name, const std::string& alias, int64_t version) {
  ENGAGE_RETURN_IF_ERROR(CheckName(alias, "alias"));
  ENGAGE_ASSIGN_OR_RETURN(auto txn, SqliteTxn::Begin(db_));
  ENGAGE_ASSIGN_OR_RETURN(ModelVersion v, Load(name, version));
  std::optional<int64_t> previous;
  auto cur = Resolve(name + "@" + alias);
  if (cur.ok()) previous = cur->version;
  std::string at = FormatIsoUtc(clock_.NowMicros());
  ENGAGE_RETURN_IF_ERROR(MoveAlias(db_, name, alias, v.version, at));
  ENGAGE_RETURN_IF_ERROR(
      RecordAliasChange(db_, name, alias, v.version, previous, true, "set by an operator", at));
  return txn->Commit();
}

Result<PromotionDecision> ModelRegistry::Promote(const std::string& name, int64_t version,
                                                 const PromotionGate& gate) {
  ENGAGE_RETURN_IF_ERROR(CheckName(gate.alias, "alias"));
  ENGAGE_ASSIGN_OR_RETURN(auto txn, SqliteTxn::Begin(db_));
  ENGAGE_ASSIGN_OR_RETURN(ModelVersion candidate, Load(name, version));
  PromotionDecision d;
  auto holder = Resolve(name + "@" + gate.alias);
  if (holder.ok()) d.previous = holder->version;
  std::optional<double> value = candidate.Metric(gate.metric);
  if (holder.ok() && holder->version == version) {
    d.reason = fmt::format("version {} already is the {}", version, gate.alias);
  } else if (!value) {
    d.reason = fmt::format("version {} has no validation {} in its card", version, gate.metric);
  } else if (*value < gate.min_value) {
    d.reason = fmt::format("validation {} {:.4f} is below the quality bar {:.4f}", gate.metric,
                           *value, gate.min_value);
  } else if (holder.ok() && holder->Metric(gate.metric) &&
             *value <= *holder->Metric(gate.metric) + gate.min_improvement) {
    d.reason = fmt::format(
        "validation {} {:.4f} does not beat the {} (version {}: {:.4f}){}", gate.metric, *value,
        gate.alias, holder->version, *holder->Metric(gate.metric),
        gate.min_improvement > 0 ? fmt::format(" by more than {:.4f}", gate.min_improvement) : "");
  } else {
    d.promoted = true;
    d.reason =
        holder.ok() && holder->Metric(gate.metric)
            ? fmt::format("validation {} {:.4f} beats the {} (version {}: {:.4f})", gate.metric,
                          *value, gate.alias, holder->version, *holder->Metric(gate.metric))
            : fmt::format("validation {} {:.4f} passes the quality bar {:.4f}; no {} yet",
                          gate.metric, *value, gate.min_value, gate.alias);
  }
  std::string at = FormatIsoUtc(clock_.NowMicros());
  if (d.promoted) ENGAGE_RETURN_IF_ERROR(MoveAlias(db_, name, gate.alias, version, at));
  ENGAGE_RETURN_IF_ERROR(
      RecordAliasChange(db_, name, gate.alias, version, d.previous, d.promoted, d.reason, at));
  ENGAGE_RETURN_IF_ERROR(txn->Commit());
  return d;
}

Result<Json> ModelRegistry::Diff(const std::string& name, int64_t a, int64_t b) {
  ENGAGE_ASSIGN_OR_RETURN(ModelVersion va, Load(name, a));
  ENGAGE_ASSIGN_OR_RETURN(ModelVersion vb, Load(name, b));
  Json out = Json::object();
  out["name"] = name;
  out["a"] = a;
  out["b"] = b;
  // Scalar fields of these card sections that differ, as {"field": [a, b]}.
  for (const char* section : {"params", "data", "training"}) {
    Json diff = Json::object();
    const Json& sa = va.card.contains(section) ? va.card[section] : Json::object();
    const Json& sb = vb.card.contains(section) ? vb.card[section] : Json::object();
    std::set<std::string> keys;
    for (const Json* s : {&sa, &sb}) {
      if (!s->is_object()) continue;
      for (auto it = s->begin(); it != s->end(); ++it) keys.insert(it.key());
    }
    for (const std::string& k : keys) {
      Json x = sa.is_object() && sa.contains(k) ? sa[k] : Json();
      Json y = sb.is_object() && sb.contains(k) ? sb[k] : Json();
      if (x != y) diff[k] = Json::array({x, y});
    }
    out[section] = std::move(diff);
  }
  Json metrics = Json::object();
  if (va.card.contains("metrics") && va.card["metrics"].contains("valid")) {
    for (auto it = va.card["metrics"]["valid"].begin(); it != va.card["metrics"]["valid"].end();
         ++it) {
      if (!it.value().is_number()) continue;
      auto other = vb.Metric(it.key());
      Json entry = Json::object();
      entry["a"] = it.value();
      entry["b"] = other ? Json(*other) : Json();
      if (other) entry["change"] = *other - it.value().get<double>();
      metrics[it.key()] = std::move(entry);
    }
  }
  out["metrics"] = std::move(metrics);
  std::set<std::string> fa, fb;
  for (const char* key : {"features"}) {
    if (va.card.contains(key) && va.card[key].is_array()) {
      for (const Json& f : va.card[key]) {
        if (f.is_string()) fa.insert(f.get<std::string>());
      }
    }
    if (vb.card.contains(key) && vb.card[key].is_array()) {
      for (const Json& f : vb.card[key]) {
        if (f.is_string()) fb.insert(f.get<std::string>());
      }
    }
  }
  Json added = Json::array(), removed = Json::array();
  for (const auto& f : fb) {
    if (!fa.count(f)) added.push_back(f);
  }
  for (const auto& f : fa) {
    if (!fb.count(f)) removed.push_back(f);
  }
  out["features"] = Json{{"added", added}, {"removed", removed}};
  return out;
}

}  // namespace engage::ml
