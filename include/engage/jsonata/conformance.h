// Runs the JSONata conformance corpus (shared/conformance/jsonata/cases.jsonl) against the
// native engine. Used by the conformance test and by `engage flow jsonata-conformance`.
//
//   ENGAGE_ASSIGN_OR_RETURN(auto results, RunJsonataCorpus(path));
//   for (const auto& r : results) if (!r.passed) std::cout << r.id << ": " << r.detail << "\n";
//
// Each case is compiled and evaluated as the corpus README prescribes: no "data" key means no
// input, "bindings" become variables, "result" is compared structurally (numbers by value, object
// key order ignored, "unordered" arrays as multisets), "undefined" requires no value and "error"
// requires exactly that code from compile or evaluation. The case's "timelimit_ms" becomes the
// time limit and its "depth" (calibrated to jsonata-js, about three evaluator frames per call)
// becomes a call-depth limit of depth / 3.
//
// Thread-safety: stateless; safe to call concurrently.
#pragma once

#include <string>
#include <vector>

#include "engage/core/json.h"
#include "engage/core/status.h"

namespace engage::jsonata {

struct JsonataCaseResult {
  std::string id;
  std::string group;
  bool passed = false;
  std::string detail;  // first difference or the unexpected error; empty when passed
  double elapsed_ms = 0;
};

// Runs one case (a parsed line of cases.jsonl).
JsonataCaseResult RunJsonataCase(const Json& test_case);

// Runs every case of the file. kNotFound if the file is missing, kInvalidArgument (naming the
// line) if a line is not valid JSON. Case failures are results, not errors.
Result<std::vector<JsonataCaseResult>> RunJsonataCorpus(const std::string& cases_jsonl_path);

// {"overall": {"passed", "total", "rate"}, "groups": {name: {...}}, "failures": [{"id", "group",
// "detail"}]}
Json JsonataReportToJson(const std::vector<JsonataCaseResult>& results);

// Structural equality as the corpus defines it (numbers by value, object keys unordered);
// with `unordered`, top-level arrays compare as multisets. On mismatch `*diff` names the first
// difference (a JSON-pointer-like path).
bool JsonataResultsEqual(const Json& expected, const Json& actual, bool unordered,
                         std::string* diff);

}  // namespace engage::jsonata
