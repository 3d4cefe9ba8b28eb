// Injectable clock: production code asks a Clock for the time so tests can fix it.
// Thread-safety: SystemClock is stateless; FakeClock is safe for concurrent use.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace engage {

class Clock {
 public:
  virtual ~Clock() = default;
  // Microseconds since the Unix epoch (UTC).
  virtual int64_t NowMicros() const = 0;
  // Monotonic microseconds for measuring durations.
  virtual int64_t MonotonicMicros() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMicros() const override;
  int64_t MonotonicMicros() const override;
  // The process-wide instance (stateless, so sharing it is safe).
  static const SystemClock& Default();
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t now_micros) : now_(now_micros) {}
  int64_t NowMicros() const override { return now_.load(); }
  int64_t MonotonicMicros() const override { return now_.load(); }
  void AdvanceMicros(int64_t d) { now_ += d; }
  void SetMicros(int64_t t) { now_ = t; }

 private:
  std::atomic<int64_t> now_;
};

// "2024-03-01T12:00:00Z" for micros since epoch.
std::string FormatIsoUtc(int64_t micros);
// Days since 1970-01-01 -> "YYYY-MM-DD".
std::string FormatDate(int64_t days_since_epoch);
// "YYYY-MM-DD" -> days since epoch; false on malformed input.
bool ParseDate(const std::string& s, int64_t* days_since_epoch);

}  // namespace engage
