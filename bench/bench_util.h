// Helpers shared by the benchmarks: timing, medians, and failing loudly.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

namespace engage::bench {

// Wall time of one call of `f`, in seconds.
inline double Seconds(const std::function<void()>& f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Wall time and process CPU time (every thread's, DuckDB's workers included) of one call of `f`,
// in seconds. CPU time is steadier than wall time on a machine other work shares.
struct Timing {
  double wall_s = 0;
  double cpu_s = 0;
};
inline double ProcessCpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}
inline Timing Time(const std::function<void()>& f) {
  double cpu0 = ProcessCpuSeconds();
  double wall = Seconds(f);
  return {wall, ProcessCpuSeconds() - cpu0};
}

inline double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Prints "<program>: <what>" and exits 1: a benchmark whose results disagree must not report.
[[noreturn]] inline void Die(const char* program, const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", program, what.c_str());
  std::exit(1);
}

}  // namespace engage::bench
