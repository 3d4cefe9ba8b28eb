// JSONata conformance corpus runner (see engage/jsonata/conformance.h).

#include "engage/jsonata/conformance.h"

#include <cctype>
#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>

#include "engage/jsonata/jsonata.h"

namespace engage::jsonata {

namespace {

bool Equal(const Json& a, const Json& b, const std::string& path, std::string* diff) {
  auto fail = [&](const std::string& why) {
    if (diff != nullptr) *diff = (path.empty() ? "/" : path) + ": " + why;
    return false;
  };
  if (a.is_number() && b.is_number()) {
    if (a.get<double>() != b.get<double>()) {
      return fail("expected " + a.dump() + ", got " + b.dump());
    }
    return true;
  }
  if (a.type() != b.type()) return fail("expected " + a.dump() + ", got " + b.dump());
  if (a.is_array()) {
    if (a.size() != b.size()) {
      return fail("expected " + std::to_string(a.size()) + " items, got " +
                  std::to_string(b.size()) + " (" + b.dump().substr(0, 200) + ")");
    }
    for (size_t i = 0; i < a.size(); ++i) {
      if (!Equal(a[i], b[i], path + "/" + std::to_string(i), diff)) return false;
    }
    return true;
  }
  if (a.is_object()) {
    for (auto it = a.begin(); it != a.end(); ++it) {
      if (!b.contains(it.key())) return fail("missing key '" + it.key() + "'");
      if (!Equal(it.value(), b[it.key()], path + "/" + it.key(), diff)) return false;
    }
    for (auto it = b.begin(); it != b.end(); ++it) {
      if (!a.contains(it.key())) return fail("unexpected key '" + it.key() + "'");
    }
    return true;
  }
  if (a != b) return fail("expected " + a.dump() + ", got " + b.dump());
  return true;
}

std::string Short(const Json& j) {
  std::string s = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  return s.size() > 200 ? s.substr(0, 200) + "..." : s;
}

// Strict JSON parsers reject lone UTF-16 surrogate escapes (two corpus cases hold "\ud800").
// Doubling the backslash keeps the escape as text, which the JSONata lexer then decodes.
std::string EscapeLoneSurrogates(const std::string& line) {
  std::string out;
  for (size_t i = 0; i < line.size(); ++i) {
    bool escape = line[i] == '\\' && i + 5 < line.size() && (line[i + 1] == 'u') &&
                  (line[i + 2] == 'd' || line[i + 2] == 'D');
    if (escape) {
      char h = static_cast<char>(std::tolower(line[i + 3]));
      bool high = h >= '8' && h <= 'b';
      bool paired = high && i + 11 < line.size() && line[i + 6] == '\\' && line[i + 7] == 'u' &&
                    (line[i + 8] == 'd' || line[i + 8] == 'D') &&
                    std::string("cdef").find(static_cast<char>(std::tolower(line[i + 9]))) !=
                        std::string::npos;
      if (h >= '8' && !paired) {
        out += "\\\\";
        continue;
      }
      if (paired) {
        out += line.substr(i, 12);
        i += 11;
        continue;
      }
    }
    out += line[i];
  }
  return out;
}

}  // namespace

bool JsonataResultsEqual(const Json& expected, const Json& actual, bool unordered,
                         std::string* diff) {
  if (unordered && expected.is_array() && actual.is_array() && expected.size() == actual.size()) {
    std::vector<bool> used(actual.size(), false);
    for (const auto& e : expected) {
      bool found = false;
      for (size_t i = 0; i < actual.size(); ++i) {
        if (!used[i] && Equal(e, actual[i], "", nullptr)) {
          used[i] = true;
          found = true;
          break;
        }
      }
      if (!found) {
        if (diff != nullptr) *diff = "/: no match for " + Short(e);
        return false;
      }
    }
    return true;
  }
  return Equal(expected, actual, "", diff);
}

JsonataCaseResult RunJsonataCase(const Json& c) {
  JsonataCaseResult r;
  r.id = c.value("id", "");
  r.group = c.value("group", "");
  auto start = std::chrono::steady_clock::now();
  auto finish = [&](bool passed, std::string detail) {
    r.passed = passed;
    r.detail = std::move(detail);
    r.elapsed_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    return r;
  };
  std::string expected_error = c.contains("error") ? c["error"].get<std::string>() : "";
  auto compiled = Expression::Compile(c.value("expr", ""));
  if (!compiled.ok()) {
    if (!expected_error.empty() && compiled.error().code == expected_error) return finish(true, "");
    return finish(false,
                  "compile error " + compiled.error().code + ": " + compiled.error().message);
  }
  Bindings bindings;
  if (c.contains("bindings") && c["bindings"].is_object()) {
    for (auto it = c["bindings"].begin(); it != c["bindings"].end(); ++it) {
      bindings[it.key()] = it.value();
    }
  }
  EvalOptions options;
  if (c.contains("timelimit_ms")) options.time_limit_ms = c["timelimit_ms"].get<int64_t>();
  if (c.contains("depth")) options.max_depth = c["depth"].get<int>() / 3;
  const Json* input = c.contains("data") ? &c["data"] : nullptr;
  auto out = compiled->Evaluate(input, bindings, options);
  if (!out.ok()) {
    if (!expected_error.empty() && out.error().code == expected_error) return finish(true, "");
    return finish(false, "error " + out.error().code + ": " + out.error().message +
                             (expected_error.empty() ? "" : " (expected " + expected_error + ")"));
  }
  if (!expected_error.empty()) {
    return finish(false, "expected error " + expected_error + ", got " +
                             (out->has_value() ? Short(**out) : std::string("undefined")));
  }
  if (c.value("undefined", false)) {
    if (!out->has_value()) return finish(true, "");
    return finish(false, "expected undefined, got " + Short(**out));
  }
  if (!out->has_value()) return finish(false, "expected " + Short(c["result"]) + ", got undefined");
  std::string diff;
  if (JsonataResultsEqual(c["result"], **out, c.value("unordered", false), &diff)) {
    return finish(true, "");
  }
  return finish(false, diff);
}

Result<std::vector<JsonataCaseResult>> RunJsonataCorpus(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("JSONata corpus not found: " + path);
  std::vector<JsonataCaseResult> results;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json c = Json::parse(line, nullptr, false);
    if (c.is_discarded()) c = Json::parse(EscapeLoneSurrogates(line), nullptr, false);
    if (c.is_discarded() || !c.is_object()) {
      return InvalidArgumentError(path + ":" + std::to_string(line_no) + ": invalid JSON");
    }
    results.push_back(RunJsonataCase(c));
  }
  return results;
}

Json JsonataReportToJson(const std::vector<JsonataCaseResult>& results) {
  std::map<std::string, std::pair<int64_t, int64_t>> per;  // group -> passed, total
  int64_t passed = 0;
  Json failures = Json::array();
  for (const auto& r : results) {
    auto& [p, t] = per[r.group];
    ++t;
    p += r.passed ? 1 : 0;
    passed += r.passed ? 1 : 0;
    if (!r.passed) failures.push_back(Json{{"id", r.id}, {"group", r.group}, {"detail", r.detail}});
  }
  auto counts = [](int64_t p, int64_t t) {
    return Json{{"passed", p}, {"total", t}, {"rate", t > 0 ? static_cast<double>(p) / t : 0.0}};
  };
  Json groups = Json::object();
  for (const auto& [name, pt] : per) groups[name] = counts(pt.first, pt.second);
  return Json{{"overall", counts(passed, static_cast<int64_t>(results.size()))},
              {"groups", std::move(groups)},
              {"failures", std::move(failures)}};
}

}  // namespace engage::jsonata
