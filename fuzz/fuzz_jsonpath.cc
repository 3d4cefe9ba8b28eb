// libFuzzer target: bytes -> JsonPath::Parse -> Select / Evaluate / Write / Normalized on fixed
// sample documents. Checks the documented contract that a definite path selects at most one node.
#include <cstdlib>

#include "engage/flow/jsonpath.h"
#include "fuzz_common.h"

namespace {

using engage::Json;
using engage::flow::JsonPath;

void Exercise(const JsonPath& path, const Json& root) {
  auto hits = path.Select(root);
  // jsonpath.h promises a definite path names at most one node; more would make ASL hand a
  // single-value field an arbitrary one of several matches.
  if (hits.ok() && path.definite() && hits->size() > 1) std::abort();
  auto value = path.Evaluate(root);
  if (value.ok()) (void)engage::DumpJson(value.value());
  Json copy = root;
  (void)path.Write(copy, Json{{"written", true}});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = JsonPath::Parse(engage::fuzz::AsText(data, size));
  if (!parsed.ok()) return 0;
  const JsonPath& path = parsed.value();
  (void)path.is_root();
  // Round-trip the normalised form: it is printed in error texts users may paste back.
  (void)JsonPath::Parse(path.Normalized());
  Exercise(path, engage::fuzz::SampleDocument());
  Exercise(path, engage::fuzz::SampleContext());
  Exercise(path, Json());
  Exercise(path, Json::array({1, "two", Json::array({3})}));
  return 0;
}
