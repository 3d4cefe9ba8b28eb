// libFuzzer target: bytes -> Intrinsic::Parse -> Evaluate, with JSONPath arguments resolved
// against sample input, context and variables the way the engine resolves them.
#include "engage/flow/intrinsics.h"
#include "fuzz_common.h"

namespace {

using engage::Json;
using engage::Result;
using engage::flow::JsonPath;

Result<Json> Resolve(const JsonPath& path) {
  switch (path.root()) {
    case JsonPath::Root::kInput:
      return path.Evaluate(engage::fuzz::SampleDocument());
    case JsonPath::Root::kContext:
      return path.Evaluate(engage::fuzz::SampleContext());
    case JsonPath::Root::kVariable: {
      const Json& vars = engage::fuzz::SampleVariables();
      auto it = vars.find(path.variable());
      if (it == vars.end()) return engage::NotFoundError("no such variable");
      return path.Evaluate(*it);
    }
  }
  return engage::InvalidArgumentError("unknown root");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = engage::fuzz::AsText(data, size);
  (void)engage::flow::Intrinsic::Looks(text);
  auto f = engage::flow::Intrinsic::Parse(text);
  if (!f.ok()) return 0;
  auto v = f.value().Evaluate(Resolve);
  if (v.ok()) {
    (void)engage::DumpJson(v.value());
    (void)engage::flow::FormatIntrinsicArg(v.value());
  }
  return 0;
}
