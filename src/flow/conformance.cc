#include "engage/flow/conformance.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "engage/flow/engine.h"
#include "flow/util_internal.h"

namespace engage::flow {

namespace {

Result<Json> ReadJsonFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return NotFoundError(fmt::format("cannot read '{}'", p.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseJson(ss.str(), p.string());
}

// True when `expected` (which may hold redaction tokens such as "<json-input:1>",
// "<ArnPart_0idx>") matches `actual`. Each token matches any run of characters.
bool CauseMatches(const std::string& expected, const std::string& actual) {
  // Split the expected text at tokens "<...>" that contain no spaces.
  std::vector<std::string> parts;
  std::string cur;
  for (size_t i = 0; i < expected.size(); ++i) {
    if (expected[i] == '<') {
      size_t close = expected.find('>', i);
      if (close != std::string::npos &&
          expected.substr(i, close - i).find(' ') == std::string::npos &&
          (expected.compare(i, 11, "<json-input") == 0 || expected.compare(i, 8, "<ArnPart") == 0 ||
           expected.compare(i, 12, "<ExecArnPart") == 0)) {
        parts.push_back(cur);
        cur.clear();
        i = close;
        continue;
      }
    }
    cur += expected[i];
  }
  if (parts.empty()) return expected == actual;
  parts.push_back(cur);
  size_t pos = 0;
  for (size_t k = 0; k < parts.size(); ++k) {
    const std::string& part = parts[k];
    if (k == 0) {
      if (actual.compare(0, part.size(), part) != 0) return false;
      pos = part.size();
    } else if (k + 1 == parts.size()) {
      return actual.size() >= pos + part.size() &&
             actual.compare(actual.size() - part.size(), part.size(), part) == 0;
    } else {
      size_t found = actual.find(part, pos);
      if (found == std::string::npos) return false;
      pos = found + part.size();
    }
  }
  return true;
}

// JSON pointer-ish dotted location for messages.
std::string Where(const std::string& path) { return path.empty() ? "$" : path; }

// Compares `expected` and `actual`, skipping the given nondeterministic JSONPaths (rooted at
// "$.output"). Returns the first difference, or "" when equal.
std::string Diff(const Json& expected, const Json& actual, const std::string& path,
                 const std::vector<std::string>& skip) {
  if (std::find(skip.begin(), skip.end(), path) != skip.end()) return "";
  if (expected.is_number() && actual.is_number()) {
    return JsonEqual(expected, actual) ? ""
                                       : fmt::format("{}: expected {}, got {}", Where(path),
                                                     DumpJson(expected), DumpJson(actual));
  }
  if (expected.type() != actual.type()) {
    return fmt::format("{}: expected {}, got {}", Where(path), DumpJson(expected),
                       DumpJson(actual));
  }
  if (expected.is_object()) {
    for (auto it = expected.begin(); it != expected.end(); ++it) {
      auto other = actual.find(it.key());
      std::string child = path + "." + it.key();
      if (other == actual.end()) {
        if (std::find(skip.begin(), skip.end(), child) != skip.end()) continue;
        return fmt::format("{}: missing key '{}'", Where(path), it.key());
      }
      std::string d = Diff(it.value(), *other, child, skip);
      if (!d.empty()) return d;
    }
    for (auto it = actual.begin(); it != actual.end(); ++it) {
      if (!expected.contains(it.key())) {
        return fmt::format("{}: unexpected key '{}'", Where(path), it.key());
      }
    }
    return "";
  }
  if (expected.is_array()) {
    if (expected.size() != actual.size()) {
      return fmt::format("{}: expected {} items, got {}: {}", Where(path), expected.size(),
                         actual.size(), DumpJson(actual).substr(0, 300));
    }
    for (size_t i = 0; i < expected.size(); ++i) {
      std::string d = Diff(expected[i], actual[i], fmt::format("{}[{}]", path, i), skip);
      if (!d.empty()) return d;
    }
    return "";
  }
  return expected == actual ? ""
                            : fmt::format("{}: expected {}, got {}", Where(path),
                                          DumpJson(expected), DumpJson(actual));
}

// `obj[key]` when it is a string, else "".
std::string StringField(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Why expected.json cannot be read as the corpus README describes ("" when it can).
std::string MalformedExpected(const Json& e) {
  if (!e.is_object()) return "not a JSON object";
  for (const char* key : {"status", "error", "cause"}) {
    if (e.contains(key) && !e[key].is_string()) return fmt::format("\"{}\" is not a string", key);
  }
  if (auto nd = e.find("nondeterministic_paths"); nd != e.end()) {
    if (!nd->is_array()) return "\"nondeterministic_paths\" is not an array";
    for (const Json& p : *nd) {
      if (!p.is_string()) return "\"nondeterministic_paths\" holds a non-string";
    }
  }
  return "";
}

}  // namespace

AslCaseResult RunAslCase(const std::string& case_dir) {
  namespace fs = std::filesystem;
  AslCaseResult out;
  out.name = fs::path(case_dir).filename().string();
  out.category = out.name.substr(0, out.name.find("__"));
  auto def = ReadJsonFile(fs::path(case_dir) / "definition.json");
  auto input = ReadJsonFile(fs::path(case_dir) / "input.json");
  auto expected = ReadJsonFile(fs::path(case_dir) / "expected.json");
  if (!def.ok() || !input.ok() || !expected.ok()) {
    out.detail = !def.ok()     ? def.status().message()
                 : !input.ok() ? input.status().message()
                               : expected.status().message();
    return out;
  }
  std::vector<Diagnostic> problems;
  auto sm = ParseDefinition(*def, &problems);
  if (sm == nullptr) {
    out.detail = "definition rejected: " + problems.front().ToString();
    return out;
  }
  // A virtual clock: waits advance time instead of sleeping.
  FakeClock clock(1700000000LL * 1000000);
  EngineOptions options;
  options.clock = &clock;
  options.sleep = [&clock](int64_t micros) { clock.AdvanceMicros(micros); };
  options.state_machine_name = "conformance";
  if (auto meta = ReadJsonFile(fs::path(case_dir) / "meta.json"); meta.ok()) {
    options.express = StringField(*meta, "execution_type") == "EXPRESS";
  }
  Engine engine(options);
  ExecutionResult r = engine.Run(*sm, *input, "case");

  const Json& e = *expected;
  // expected.json is data from the corpus: a field of the wrong type fails the case (naming
  // the field) instead of throwing from Json::get.
  if (std::string bad = MalformedExpected(e); !bad.empty()) {
    out.detail = "expected.json: " + bad;
    return out;
  }
  std::vector<std::string> skip;
  if (auto nd = e.find("nondeterministic_paths"); nd != e.end()) {
    for (const Json& p : *nd) skip.push_back(p.get<std::string>());
  }
  std::string want_status = StringField(e, "status");
  std::string got_status = ExecutionStatusName(r.status);
  if (want_status != got_status) {
    out.detail = fmt::format("status: expected {}, got {}", want_status, got_status);
    if (r.status != ExecutionStatus::kSucceeded) {
      out.detail += fmt::format(" ({}: {})", r.error.value_or("-"), r.cause.value_or("-"));
    } else {
      out.detail += " " + DumpJson(r.output).substr(0, 300);
    }
    return out;
  }
  if (want_status == "SUCCEEDED") {
    out.detail = Diff(e.contains("output") ? e["output"] : Json(), r.output, "$.output", skip);
    out.passed = out.detail.empty();
    return out;
  }
  auto want_error = e.contains("error") ? std::optional<std::string>(e["error"].get<std::string>())
                                        : std::nullopt;
  if (want_error != r.error) {
    out.detail =
        fmt::format("error: expected {}, got {} (cause: {})", want_error.value_or("<none>"),
                    r.error.value_or("<none>"), r.cause.value_or("<none>"));
    return out;
  }
  bool skip_cause = std::find(skip.begin(), skip.end(), "$.cause") != skip.end();
  auto want_cause = e.contains("cause") ? std::optional<std::string>(e["cause"].get<std::string>())
                                        : std::nullopt;
  if (!skip_cause) {
    bool same = want_cause.has_value() == r.cause.has_value() &&
                (!want_cause || CauseMatches(*want_cause, *r.cause));
    if (!same) {
      out.cause_only = true;
      out.detail = fmt::format("cause: expected '{}', got '{}'", want_cause.value_or("<none>"),
                               r.cause.value_or("<none>"));
      return out;
    }
  }
  out.passed = true;
  return out;
}

Result<std::vector<AslCaseResult>> RunAslCorpus(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path root(dir);
  if (fs::is_directory(root / "cases", ec)) root /= "cases";
  if (!fs::is_directory(root, ec)) {
    return NotFoundError(fmt::format("conformance directory '{}' does not exist", dir));
  }
  std::vector<std::string> cases;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (entry.is_directory() && fs::exists(entry.path() / "definition.json")) {
      cases.push_back(entry.path().string());
    }
  }
  if (cases.empty()) {
    return NotFoundError(fmt::format("no cases (folders with definition.json) in '{}'", dir));
  }
  std::sort(cases.begin(), cases.end());
  std::vector<AslCaseResult> results;
  results.reserve(cases.size());
  for (const std::string& c : cases) results.push_back(RunAslCase(c));
  return results;
}

Json AslReportToJson(const std::vector<AslCaseResult>& results) {
  std::map<std::string, std::pair<int64_t, int64_t>> per;  // passed, total
  int64_t passed = 0, cause_only = 0;
  Json failures = Json::array();
  for (const AslCaseResult& r : results) {
    auto& [p, t] = per[r.category];
    ++t;
    if (r.passed) {
      ++p;
      ++passed;
    } else {
      if (r.cause_only) ++cause_only;
      failures.push_back(Json{{"case", r.name},
                              {"category", r.category},
                              {"cause_only", r.cause_only},
                              {"detail", r.detail}});
    }
  }
  auto rate = [](int64_t p, int64_t t) { return t == 0 ? 0.0 : static_cast<double>(p) / t; };
  Json out = Json::object();
  out["overall"] = Json{{"passed", passed},
                        {"total", static_cast<int64_t>(results.size())},
                        {"rate", rate(passed, static_cast<int64_t>(results.size()))},
                        {"cause_only_failures", cause_only}};
  Json cats = Json::object();
  for (const auto& [name, pt] : per) {
    cats[name] =
        Json{{"passed", pt.first}, {"total", pt.second}, {"rate", rate(pt.first, pt.second)}};
  }
  out["categories"] = std::move(cats);
  out["failures"] = std::move(failures);
  return out;
}

}  // namespace engage::flow
