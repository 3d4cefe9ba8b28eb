#include "engage/ml/registry.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <set>

#include "engage/core/config.h"
#include "engage/core/fs.h"
#include "engage/core/ids.h"

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

// A card value on one line: numbers to 4 significant places, lists as "first .. last (n)".
std::string Compact(const Json& v) {
  if (v.is_number_float()) return fmt::format("{:.4g}", v.get<double>());
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array() && v.size() > 3) {
    return fmt::format("{} .. {} ({})", Compact(v.front()), Compact(v.back()), v.size());
  }
  if (v.is_array()) {
    std::string out;
    for (const Json& x : v) out += (out.empty() ? "" : ", ") + Compact(x);
    return out.empty() ? "-" : out;
  }
  return v.dump();
}

// The scalar (or short list) fields of a card section as "key value, key value".
std::string Fields(const Json& card, const char* section) {
  std::string out;
  if (!card.is_object() || !card.contains(section) || !card[section].is_object()) return "-";
  for (const auto& [k, v] : card[section].items()) {
    if (v.is_null() || v.is_object() || (v.is_string() && v.get<std::string>().empty()) ||
        (v.is_array() && v.empty())) {
      continue;
    }
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", k, Compact(v));
  }
  return out.empty() ? "-" : out;
}

}  // namespace

namespace {

// JSON text with every object's keys in byte order (Json keeps insertion order).
void AppendCanonical(const Json& v, std::string* out) {
  if (v.is_object()) {
    std::vector<std::string> keys;
    for (auto it = v.begin(); it != v.end(); ++it) keys.push_back(it.key());
    std::sort(keys.begin(), keys.end());
    out->push_back('{');
    for (size_t i = 0; i < keys.size(); ++i) {
      if (i > 0) out->push_back(',');
      *out += Json(keys[i]).dump() + ":";
      AppendCanonical(v[keys[i]], out);
    }
    out->push_back('}');
  } else if (v.is_array()) {
    out->push_back('[');
    for (size_t i = 0; i < v.size(); ++i) {
      if (i > 0) out->push_back(',');
      AppendCanonical(v[i], out);
    }
    out->push_back(']');
  } else {
    *out += v.dump();
  }
}

}  // namespace

std::string Fingerprint(const Json& identity) {
  std::string text;
  AppendCanonical(identity, &text);
  return Sha256Hex(text);
}

Result<Json> LakeTablesIdentity(sql::QueryEngine& engine, const std::vector<std::string>& tables) {
  Json out = Json::object();
  for (const std::string& table : tables) {
    if (table.empty()) continue;
    Json t = Json::object();
    Json files = Json::array();
    ENGAGE_ASSIGN_OR_RETURN(auto listed, engine.CatalogFiles(table));
    for (const auto& f : listed) files.push_back(Json::array({f.path, f.rows, f.bytes}));
    t["files"] = std::move(files);
    Json columns = Json::array();
    if (auto spec = engine.lake().config().Table(table); spec.ok()) {
      for (const auto& c : (*spec)->columns) {
        columns.push_back(Json::array({c.name, std::string(ColumnTypeName(c.type)), c.allowed}));
      }
    }
    t["columns"] = std::move(columns);
    out[table] = std::move(t);
  }
  return out;
}

std::optional<double> ModelVersion::Metric(const std::string& metric) const {
  const Json* m = &card;
  for (const char* key : {"metrics", "valid"}) {
    if (!m->is_object() || !m->contains(key)) return std::nullopt;
    m = &(*m)[key];
  }
  if (!m->is_object() || !m->contains(metric) || !(*m)[metric].is_number()) return std::nullopt;
  return (*m)[metric].get<double>();
}

std::string ModelVersion::kind() const {
  return card.is_object() && card.contains("kind") && card["kind"].is_string()
             ? card["kind"].get<std::string>()
             : std::string();
}

std::string ModelVersion::fingerprint() const {
  return card.is_object() && card.contains("fingerprint") && card["fingerprint"].is_string()
             ? card["fingerprint"].get<std::string>()
             : std::string();
}

std::string ModelVersion::ToText() const {
  std::string aliased;
  for (const auto& a : aliases) aliased += (aliased.empty() ? "" : ", ") + a;
  std::string metrics;
  if (card.contains("metrics") && card["metrics"].is_object()) {
    const Json& m = card["metrics"];
    metrics = Fields(m, "valid");
    if (m.contains("evaluated_on") && m["evaluated_on"].is_string()) {
      metrics += " (" + m["evaluated_on"].get<std::string>() + ")";
    }
    if (m.contains("baseline") && m["baseline"].is_object() && m["baseline"].contains("auc")) {
      metrics += fmt::format("; baseline ({}) auc {}", m["baseline"].value("name", "baseline"),
                             Compact(m["baseline"]["auc"]));
    }
  }
  std::string out = fmt::format("{}@{}{}\n", name, version,
                                aliased.empty() ? "" : fmt::format("  ({})", aliased));
  auto line = [&out](const char* label, const std::string& value) {
    out += fmt::format("  {:<12} {}\n", label, value.empty() ? "-" : value);
  };
  line("created", created_at);
  line("kind", kind());
  line("metrics", metrics);
  line("params", Fields(card, "params"));
  line("data", Fields(card, "data"));
  line("training", Fields(card, "training"));
  line("features", card.contains("features") ? Compact(card["features"]) : "");
  line("fingerprint", fingerprint());
  line("path", dir);
  return out;
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
  std::string kind = card.contains("kind") && card["kind"].is_string() ? card["kind"] : "";
  std::string fingerprint =
      card.contains("fingerprint") && card["fingerprint"].is_string() ? card["fingerprint"] : "";
  if (!kind.empty() || !fingerprint.empty()) {
    ENGAGE_ASSIGN_OR_RETURN(auto same, FindIdentical(name, kind, fingerprint));
    if (same) {
      return AlreadyExistsError(fmt::format(
          "{}@{} was trained on the same data with the same parameters (fingerprint {})", name,
          same->version, fingerprint.substr(0, 12)));
    }
  }
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

Result<std::optional<ModelVersion>> ModelRegistry::FindIdentical(const std::string& name,
                                                                 const std::string& kind,
                                                                 const std::string& fingerprint) {
  ENGAGE_RETURN_IF_ERROR(CheckName(name, "model name"));
  ENGAGE_ASSIGN_OR_RETURN(std::optional<int64_t> latest, Latest(name));
  if (!latest) return std::optional<ModelVersion>();
  if (!kind.empty()) {
    ENGAGE_ASSIGN_OR_RETURN(ModelVersion newest, Load(name, *latest));
    std::string had = newest.kind().empty() ? "engagement" : newest.kind();
    if (had != kind) {
      return FailedPreconditionError(fmt::format(
          "model '{}' holds {} models (version {}); register this {} model under another name "
          "(--model NAME)",
          name, had, *latest, kind));
    }
  }
  if (fingerprint.empty()) return std::optional<ModelVersion>();
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt st,
                          db_.Prepare("SELECT MAX(version) FROM model_versions WHERE name = ? AND "
                                      "json_extract(card, '$.fingerprint') = ?"));
  st.Bind(1, name).Bind(2, fingerprint);
  ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row || st.IsNull(0)) return std::optional<ModelVersion>();
  ENGAGE_ASSIGN_OR_RETURN(ModelVersion v, Load(name, st.Int(0)));
  return std::optional<ModelVersion>(std::move(v));
}

Result<std::optional<int64_t>> ModelRegistry::Latest(const std::string& name) {
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt st,
                          db_.Prepare("SELECT MAX(version) FROM model_versions WHERE name = ?"));
  st.Bind(1, name);
  ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row || st.IsNull(0)) return std::optional<int64_t>();
  return std::optional<int64_t>(st.Int(0));
}

namespace {

Status NoModelError(const std::string& name) {
  return NotFoundError(fmt::format(
      "no model named '{}': `engage models list` shows the models, `engage train` registers one",
      name));
}

}  // namespace

Result<ModelVersion> ModelRegistry::Load(const std::string& name, int64_t version) {
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db_.Prepare("SELECT created_at, card FROM model_versions WHERE name = ? AND version = ?"));
  st.Bind(1, name).Bind(2, version);
  ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) {
    ENGAGE_ASSIGN_OR_RETURN(std::optional<int64_t> latest, Latest(name));
    if (!latest) return NoModelError(name);
    return NotFoundError(fmt::format(
        "model '{}' has no version {}: its versions are 1 .. {} (`engage models list {}`)", name,
        version, *latest, name));
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
    ENGAGE_ASSIGN_OR_RETURN(std::optional<int64_t> latest, Latest(name));
    if (!latest) return NoModelError(name);
    return Load(name, *latest);
  }
  std::string which = ref.substr(at + 1);
  if (which.empty()) {
    return InvalidArgumentError(fmt::format(
        "'{}' names no version or alias after '@': write {}@3 or {}@champion", ref, name, name));
  }
  // A version: digits, maybe signed ("-1" is a bad version, not an alias).
  size_t sign = which[0] == '-' || which[0] == '+' ? 1 : 0;
  if (which.size() > sign && which.find_first_not_of("0123456789", sign) == std::string::npos) {
    int64_t version = 0;
    const char* end = which.data() + which.size();
    auto parsed = std::from_chars(which.data() + sign, end, version);
    if (sign == 1 || parsed.ec != std::errc() || parsed.ptr != end || version < 1) {
      return InvalidArgumentError(
          fmt::format("'{}': a version is a whole number from 1 up (`engage models list {}` "
                      "shows them)",
                      ref, name));
    }
    return Load(name, version);
  }
  ENGAGE_RETURN_IF_ERROR(CheckName(which, "alias"));
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st, db_.Prepare("SELECT version FROM model_aliases WHERE name = ? AND alias = ?"));
  st.Bind(1, name).Bind(2, which);
  ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) {
    ENGAGE_ASSIGN_OR_RETURN(std::optional<int64_t> latest, Latest(name));
    if (!latest) return NoModelError(name);
    return NotFoundError(fmt::format(
        "model '{0}' has no alias '{1}'; run `engage models promote {0} {2}` or `engage models "
        "alias {0}@{2} {1}`",
        name, which, *latest));
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
    ENGAGE_RETURN_IF_ERROR(CheckName(name, "model name"));
    return NoModelError(name);
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

Result<std::optional<int64_t>> ModelRegistry::SetAlias(const std::string& name,
                                                       const std::string& alias, int64_t version) {
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
  ENGAGE_RETURN_IF_ERROR(txn->Commit());
  return previous;
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

std::string DiffToText(const Json& d) {
  std::string name = d.value("name", std::string());
  std::string out =
      fmt::format("{0}@{1} -> {0}@{2}\n", name, d.value("a", int64_t{0}), d.value("b", int64_t{0}));
  auto line = [&out](const char* label, const std::string& value) {
    out += fmt::format("  {:<10} {}\n", label, value.empty() ? "(same)" : value);
  };
  std::string metrics;
  if (d.contains("metrics") && d["metrics"].is_object()) {
    for (const auto& [k, m] : d["metrics"].items()) {
      if (m.value("a", Json()) == m.value("b", Json())) continue;  // unchanged
      metrics += fmt::format("{}{} {} -> {}", metrics.empty() ? "" : ", ", k, Compact(m["a"]),
                             Compact(m["b"]));
      if (m.contains("change") && m["change"].is_number()) {
        metrics += fmt::format(" ({:+.4f})", m["change"].get<double>());
      }
    }
  }
  line("metrics", metrics);
  for (const char* section : {"params", "data", "training"}) {
    std::string changed;
    if (d.contains(section) && d[section].is_object()) {
      for (const auto& [k, v] : d[section].items()) {
        if (!v.is_array() || v.size() != 2) continue;
        changed +=
            fmt::format("{}{} {} -> {}", changed.empty() ? "" : ", ", k,
                        v[0].is_null() ? "-" : Compact(v[0]), v[1].is_null() ? "-" : Compact(v[1]));
      }
    }
    line(section, changed);
  }
  std::string features;
  if (d.contains("features") && d["features"].is_object()) {
    for (const char* which : {"added", "removed"}) {
      const Json& f = d["features"].value(which, Json::array());
      if (f.is_array() && !f.empty()) {
        features += fmt::format("{}{} {}", features.empty() ? "" : "; ", which, Compact(f));
      }
    }
  }
  line("features", features);
  return out;
}

}  // namespace engage::ml
