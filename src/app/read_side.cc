#include "engage/app/read_side.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include "engage/app/monitoring.h"

namespace engage::app {

Result<std::shared_ptr<ReadSides>> ReadSides::Open(const HomePaths& home, const Clock& clock,
                                                   int threads,
                                                   std::shared_ptr<Monitoring> monitoring) {
  std::shared_ptr<ReadSides> reads(new ReadSides(home, clock, threads, std::move(monitoring)));
  ENGAGE_RETURN_IF_ERROR(reads->Current().status());
  return reads;
}

ReadSides::Stamp ReadSides::ConfigStamp() const {
  struct stat st {};
  if (::stat(home_.config().c_str(), &st) != 0) return Stamp{};
  return Stamp{st.st_ino, st.st_size,
               static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

Result<std::shared_ptr<ReadSide>> ReadSides::OpenSide() const {
  std::shared_ptr<ReadSide> side(new ReadSide());
  lake::LakeOptions options;
  options.writer = false;
  options.clock = &clock_;
  ENGAGE_ASSIGN_OR_RETURN(side->lake_, lake::Lake::Open(home_, options));
  ENGAGE_ASSIGN_OR_RETURN(side->query_, sql::QueryEngine::Open(*side->lake_, threads_));
  if (monitoring_ != nullptr) monitoring_->Install(*side->query_);
  return side;
}

Result<std::shared_ptr<ReadSide>> ReadSides::Current() {
  std::lock_guard<std::mutex> lock(mu_);
  Stamp now = ConfigStamp();
  if (current_ != nullptr && now == stamp_) return current_;
  // Stamped before opening: an edit made while opening is seen by the next call.
  auto opened = OpenSide();
  if (!opened.ok()) {
    if (current_ == nullptr) return opened.status();
    // A running server keeps the config it has rather than failing every request over a typo;
    // the next edit is tried again.
    spdlog::warn("engage.toml changed but does not load ({}); still using the previous config",
                 opened.status().message());
    stamp_ = now;
    return current_;
  }
  current_ = std::move(*opened);
  stamp_ = now;
  ++opens_;
  return current_;
}

int64_t ReadSides::opens() const {
  std::lock_guard<std::mutex> lock(mu_);
  return opens_;
}

}  // namespace engage::app
