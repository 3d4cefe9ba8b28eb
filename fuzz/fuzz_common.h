// Shared pieces of the libFuzzer targets: the sample documents paths and expressions run
// against, so every target exercises selection on the same realistic shapes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engage/core/clock.h"
#include "engage/core/json.h"

namespace engage::fuzz {

// An order-like document with nested objects, arrays, numbers, strings, null and booleans.
const Json& SampleDocument();
// A context object shaped like the ASL one ($$.Execution..., $$.Map.Item...).
const Json& SampleContext();
// Variables as an ASL state sees them ($x, $list, ...).
const Json& SampleVariables();

// Wall time from a fake clock (reproducible $now(), timestamps and Wait arithmetic) but real
// monotonic time. JSONata measures its time_limit_ms guard with the clock it is given, so a
// fully fake clock would silently disable that guard and let `($f := function(){$f()}; ...)`-
// style loops spin until libFuzzer's -timeout kills the run.
class FuzzClock final : public Clock {
 public:
  int64_t NowMicros() const override { return wall_.NowMicros(); }
  int64_t MonotonicMicros() const override { return SystemClock::Default().MonotonicMicros(); }
  void AdvanceMicros(int64_t micros) { wall_.AdvanceMicros(micros); }

 private:
  FakeClock wall_{1700000000000000};
};

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

}  // namespace engage::fuzz
