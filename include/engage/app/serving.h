// The serving store as a running Engage holds it: the home's prediction store
// (serve::PredictionStore), opened once something has been published and switched to each new
// snapshot a publish makes (Refresh, called by whoever serves: the server's maintenance tick).
//
//   app.serving().Refresh();                                   // every second or so
//   const serve::Snapshot* snap = app.serving().LookupSnapshot();   // per lookup, lock-free
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

#include "engage/core/home.h"
#include "engage/core/status.h"
#include "engage/serve/store.h"

namespace engage::app {

class Serving {
 public:
  explicit Serving(HomePaths home) : home_(std::move(home)) {}

  // Opens the store when something is published; nothing published is not an error (the store
  // appears at a later Refresh). Errors of a published store that cannot be read.
  Status Open();
  // Opens the store if it has appeared since, else switches to the snapshot CURRENT names if a
  // publish changed it. Failures are logged: the previous snapshot keeps answering.
  void Refresh();

  // The snapshot for a lookup (the hot path: this thread's copy, see
  // PredictionStore::CurrentOnThisThread); null before anything is published.
  const serve::Snapshot* LookupSnapshot() const;
  // The current snapshot, held for as long as the caller keeps it; null before anything is
  // published.
  std::shared_ptr<const serve::Snapshot> CurrentSnapshot();

 private:
  // Installs `store` unless one is there already. Requires mu_.
  void InstallLocked(std::unique_ptr<serve::PredictionStore> store);

  const HomePaths home_;
  std::mutex mu_;                                        // guards creating store_
  std::unique_ptr<serve::PredictionStore> store_;        // null until something is published
  std::atomic<serve::PredictionStore*> ready_{nullptr};  // store_, once it exists
};

}  // namespace engage::app
