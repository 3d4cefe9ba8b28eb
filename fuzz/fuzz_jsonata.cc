// libFuzzer target: bytes -> jsonata::Expression::Compile -> Evaluate.
//
// Input layout: the expression, then optionally a NUL byte and a JSON input document. Without
// the NUL the expression runs over the sample document; with an unparsable document it runs
// with no input at all (JSONata's undefined), which is its own code path.
#include <cstring>

#include "engage/jsonata/jsonata.h"
#include "fuzz_common.h"

namespace jsonata = engage::jsonata;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view all = engage::fuzz::AsText(data, size);
  size_t nul = all.find('\0');
  std::string_view text = all.substr(0, nul);
  auto expr = jsonata::Expression::Compile(text);
  if (!expr.ok()) return 0;

  engage::Json input_storage;
  const engage::Json* input = &engage::fuzz::SampleDocument();
  if (nul != std::string_view::npos) {
    input_storage = engage::Json::parse(all.substr(nul + 1), nullptr, false);
    input = input_storage.is_discarded() ? nullptr : &input_storage;
  }
  // A fixed wall clock keeps $now()/$millis() reproducible when replaying a crash.
  static const engage::fuzz::FuzzClock clock;
  jsonata::EvalOptions options;
  options.max_depth = 200;
  options.time_limit_ms = 200;
  options.clock = &clock;
  options.aws_functions = true;
  jsonata::Bindings bindings = {
      {"x", 1}, {"name", "engage"}, {"list", engage::Json::array({3, 1})}};
  auto out = expr.value().Evaluate(input, bindings, options);
  if (out.ok() && out.value().has_value()) (void)engage::DumpJson(*out.value());
  return 0;
}
