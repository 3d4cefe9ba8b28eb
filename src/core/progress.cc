#include "engage/core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

#include "engage/core/clock.h"

namespace engage {

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      enabled_(::isatty(STDERR_FILENO) == 1),
      start_us_(SystemClock::Default().MonotonicMicros()) {}

Progress::~Progress() { Finish(); }

void Progress::Add(int64_t n) {
  done_ += n;
  Draw(false);
}

void Progress::Set(int64_t done) {
  done_ = done;
  Draw(false);
}

void Progress::Draw(bool force) {
  if (!enabled_) return;
  std::lock_guard lock(mu_);
  if (finished_) return;
  int64_t now = SystemClock::Default().MonotonicMicros();
  if (!force && now - last_draw_us_ < 100000) return;
  last_draw_us_ = now;
  int64_t done = done_.load();
  double secs = static_cast<double>(now - start_us_) / 1e6;
  double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
  std::string line;
  if (total_ > 0) {
    double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
    int filled = static_cast<int>(frac * 30);
    line = fmt::format("\r{} [{}{}] {:5.1f}% {}/{} {} ({:.0f}/s)", label_, std::string(filled, '#'),
                       std::string(30 - filled, '.'), frac * 100, done, total_, unit_, rate);
  } else {
    line = fmt::format("\r{} {} {} ({:.0f}/s)", label_, done, unit_, rate);
  }
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

void Progress::Finish() {
  if (!enabled_) return;
  std::lock_guard lock(mu_);
  if (finished_) return;
  finished_ = true;
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
}

StatusLine::StatusLine() : enabled_(::isatty(STDERR_FILENO) == 1) {}

StatusLine::~StatusLine() { Finish(); }

void StatusLine::Show(const std::string& text, bool force) {
  if (!enabled_) return;
  std::lock_guard lock(mu_);
  int64_t now = SystemClock::Default().MonotonicMicros();
  if (!force && last_draw_us_ >= 0 && now - last_draw_us_ < 100000) return;
  last_draw_us_ = now;
  shown_ = true;
  std::fprintf(stderr, "\r\033[K%s", text.c_str());
  std::fflush(stderr);
}

void StatusLine::Finish() {
  if (!enabled_) return;
  std::lock_guard lock(mu_);
  if (!shown_) return;
  shown_ = false;
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
}

}  // namespace engage
