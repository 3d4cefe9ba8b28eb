#include "engage/core/usage.h"

#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace engage {

namespace {

double TimevalSeconds(const timeval& t) {
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
}

// read_bytes-like counters of /proc/self/io: rchar and wchar (bytes through read and write
// calls, page cache or not), the same counter the query engine meters scans with.
void ReadIoCounters(int64_t* read, int64_t* written) {
  *read = 0;
  *written = 0;
  FILE* f = std::fopen("/proc/self/io", "re");
  if (f == nullptr) return;
  char line[128];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    long long v = 0;
    if (std::sscanf(line, "rchar: %lld", &v) == 1) *read = v;
    if (std::sscanf(line, "wchar: %lld", &v) == 1) *written = v;
  }
  std::fclose(f);
}

thread_local CostContext current_context;

}  // namespace

Json Usage::ToJson() const {
  return Json{{"cpu_seconds", cpu_seconds},
              {"wall_seconds", wall_seconds},
              {"bytes_read", bytes_read},
              {"bytes_written", bytes_written},
              {"peak_memory_bytes", peak_memory_bytes}};
}

Usage& Usage::operator+=(const Usage& o) {
  cpu_seconds += o.cpu_seconds;
  wall_seconds += o.wall_seconds;
  bytes_read += o.bytes_read;
  bytes_written += o.bytes_written;
  peak_memory_bytes = std::max(peak_memory_bytes, o.peak_memory_bytes);
  return *this;
}

UsageSample UsageSample::Now() {
  UsageSample s;
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    s.cpu_seconds = TimevalSeconds(ru.ru_utime) + TimevalSeconds(ru.ru_stime);
  }
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  s.monotonic_seconds = static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  ReadIoCounters(&s.bytes_read, &s.bytes_written);
  return s;
}

int64_t PeakMemoryBytes() {
  FILE* f = std::fopen("/proc/self/status", "re");
  if (f == nullptr) return 0;
  char line[256];
  int64_t kb = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    long long v = 0;
    if (std::sscanf(line, "VmHWM: %lld kB", &v) == 1) kb = v;
  }
  std::fclose(f);
  return kb * 1024;
}

Usage UsageMeter::Stop() const {
  UsageSample end = UsageSample::Now();
  Usage u;
  u.cpu_seconds = std::max(0.0, end.cpu_seconds - start_.cpu_seconds);
  u.wall_seconds = std::max(0.0, end.monotonic_seconds - start_.monotonic_seconds);
  u.bytes_read = std::max<int64_t>(0, end.bytes_read - start_.bytes_read);
  u.bytes_written = std::max<int64_t>(0, end.bytes_written - start_.bytes_written);
  u.peak_memory_bytes = PeakMemoryBytes();
  return u;
}

const CostContext& CurrentCostContext() { return current_context; }

CostScope::CostScope(CostContext context, const std::string& id) : saved_(current_context) {
  auto inherit = [](std::string& field, const std::string& outer) {
    if (field.empty()) field = outer;
  };
  inherit(context.execution_id, saved_.execution_id);
  inherit(context.pipeline, saved_.pipeline);
  inherit(context.step, saved_.step);
  inherit(context.model, saved_.model);
  context.parent = id.empty() ? saved_.parent : id;
  current_context = std::move(context);
}

CostScope::~CostScope() { current_context = std::move(saved_); }

}  // namespace engage
