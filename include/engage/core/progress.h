// A progress bar for long work. Draws on stderr only when stderr is a terminal (never on a
// pipe or in CI logs), at most ten times a second.
// Thread-safety: Update() may be called from several threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace engage {

class Progress {
 public:
  // `total` of 0 means unknown (a counter is shown instead of a bar).
  Progress(std::string label, int64_t total, std::string unit);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Add(int64_t n);
  void Set(int64_t done);
  // Clears the bar's line; called by the destructor.
  void Finish();
  bool enabled() const { return enabled_; }

 private:
  void Draw(bool force);

  std::string label_;
  int64_t total_;
  std::string unit_;
  bool enabled_;
  std::atomic<int64_t> done_{0};
  std::mutex mu_;
  int64_t last_draw_us_ = 0;
  int64_t start_us_ = 0;
  bool finished_ = false;
};

// One line of status on stderr that each Show replaces ("reading files ...", "boosting: round
// 12/1000 ..."), only when stderr is a terminal, at most ten redraws a second unless `force`.
// Finish() (or the destructor) clears it.
// Thread-safety: Show may be called from several threads.
class StatusLine {
 public:
  StatusLine();
  ~StatusLine();
  StatusLine(const StatusLine&) = delete;
  StatusLine& operator=(const StatusLine&) = delete;

  void Show(const std::string& text, bool force = false);
  void Finish();
  bool enabled() const { return enabled_; }

 private:
  bool enabled_;
  std::mutex mu_;
  int64_t last_draw_us_ = -1;
  bool shown_ = false;
};

}  // namespace engage
