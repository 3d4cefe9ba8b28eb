// Runs the ASL conformance corpus (../shared/conformance/asl: state machines, inputs and the
// outcomes AWS Step Functions recorded) against the engine and compares the results.
//
// A case passes when the status matches, and for SUCCEEDED the output matches structurally
// (numbers by value, object key order ignored, `nondeterministic_paths` skipped), for FAILED
// the error name matches exactly and the cause matches (redaction tokens such as
// `<json-input:1>` match any text). A cause-only difference is reported separately.
#pragma once

#include <string>
#include <vector>

#include "engage/core/json.h"
#include "engage/core/status.h"

namespace engage::flow {

struct AslCaseResult {
  std::string name;
  std::string category;  // the case's folder under v2/ (its name up to "__")
  bool passed = false;
  bool cause_only = false;  // failed only because the cause text differs
  std::string detail;       // the first difference, empty when passed
};

// Runs one case directory (definition.json, input.json, expected.json).
AslCaseResult RunAslCase(const std::string& case_dir);

// Runs every case under `<dir>/cases` (or `dir` itself when it holds case folders), sorted by
// name. kNotFound when the directory does not exist.
Result<std::vector<AslCaseResult>> RunAslCorpus(const std::string& dir);

// {"overall": {"passed", "total", "rate"}, "categories": {...}, "failures": [...]}
Json AslReportToJson(const std::vector<AslCaseResult>& results);

// A conformance report ({"overall", `groups`: {name: {passed, total, rate}}, "failures"}: this
// corpus's or JSONata's) as a table of pass rates (first column headed `label`) and the
// failures' first differences.
std::string ConformanceReportText(const Json& report, const char* groups, const char* label);

}  // namespace engage::flow
