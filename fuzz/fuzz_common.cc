#include "fuzz_common.h"

namespace engage::fuzz {

// Parsed once: the targets only read these, and re-parsing per input would dominate the cost.
const Json& SampleDocument() {
  static const Json doc = Json::parse(R"({
    "id": "o-1", "total": 42.5, "count": 3, "neg": -7, "big": 9007199254740993, "ok": true,
    "none": null, "empty": {}, "list": [], "text": "a,b,,c", "unicode": "h\u00e9llo \ud83d\ude00",
    "when": "2016-03-14T01:59:00Z", "b64": "aGVsbG8=",
    "items": [
      {"sku": "A", "price": 10, "qty": 1, "tags": ["x", "y"]},
      {"sku": "B", "price": 2.5, "qty": 4, "tags": []},
      {"sku": "C", "price": null, "qty": 0, "meta": {"deep": {"deeper": [1, [2, [3]]]}}}
    ],
    "matrix": [[1, 2, 3], [4, 5, 6]],
    "a.b": {"c d": "spaced", "'q'": "quoted", "$": "dollar"},
    "nested": {"a": {"a": {"a": 1}}, "items": [5, 4, 3]}
  })",
                                      nullptr, false);
  return doc;
}

const Json& SampleContext() {
  static const Json ctx = Json::parse(R"({
    "Execution": {"Id": "arn:aws:states:local:000000000000:execution:sm:run", "Name": "run",
                  "Input": {"k": 1}, "StartTime": "2024-01-01T00:00:00Z"},
    "StateMachine": {"Id": "arn:aws:states:local:000000000000:stateMachine:sm", "Name": "sm"},
    "State": {"Name": "S", "EnteredTime": "2024-01-01T00:00:01Z", "RetryCount": 0},
    "Map": {"Item": {"Index": 2, "Value": {"v": [1, 2]}}}
  })",
                                      nullptr, false);
  return ctx;
}

const Json& SampleVariables() {
  static const Json vars = Json::parse(R"({
    "x": 1, "name": "engage", "list": [3, 1, 2], "obj": {"k": "v", "n": null}
  })",
                                       nullptr, false);
  return vars;
}

}  // namespace engage::fuzz
