#include "engage/app/serving.h"

#include <spdlog/spdlog.h>

namespace engage::app {

void Serving::InstallLocked(std::unique_ptr<serve::PredictionStore> store) {
  if (store_) return;
  store_ = std::move(store);
  ready_.store(store_.get(), std::memory_order_release);
}

Status Serving::Open() {
  auto store = serve::PredictionStore::Open(home_);
  if (!store.ok()) {
    return store.status().code() == StatusCode::kNotFound ? Status::Ok() : store.status();
  }
  std::lock_guard<std::mutex> lock(mu_);
  InstallLocked(std::move(*store));
  return Status::Ok();
}

void Serving::Refresh() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (store_) {
      auto r = store_->Refresh();
      if (!r.ok()) spdlog::warn("prediction store: {}", r.status().ToString());
      return;
    }
  }
  auto store = serve::PredictionStore::Open(home_);  // outside the lock: it reads files
  if (!store.ok()) return;                           // still nothing published
  std::lock_guard<std::mutex> lock(mu_);
  InstallLocked(std::move(*store));
}

const serve::Snapshot* Serving::LookupSnapshot() const {
  serve::PredictionStore* store = ready_.load(std::memory_order_acquire);
  return store != nullptr ? store->CurrentOnThisThread().get() : nullptr;
}

std::shared_ptr<const serve::Snapshot> Serving::CurrentSnapshot() {
  std::lock_guard<std::mutex> lock(mu_);
  return store_ ? store_->Current() : nullptr;
}

}  // namespace engage::app
