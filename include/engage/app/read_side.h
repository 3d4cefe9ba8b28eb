// The read side of a running Engage: the process's one long-lived query engine and the config it
// was opened with, shared by the CLI's commands, the server's requests and the pipeline steps.
//
//   ENGAGE_ASSIGN_OR_RETURN(auto reads, ReadSides::Open(home, clock, /*threads=*/0));
//   ENGAGE_ASSIGN_OR_RETURN(std::shared_ptr<ReadSide> rs, reads->Current());
//   ENGAGE_ASSIGN_OR_RETURN(sql::QueryResult r, rs->query().Run(request));
//
// The engine builds its views over the catalogued files once and rebuilds them only when the
// catalog changes (its generation number), not per query. The read side itself is reopened when
// engage.toml changes (a new table, other limits), so a long-running server follows config edits
// without a restart; whoever still holds the previous ReadSide keeps it until they let it go.
//
// There is no Lake here on purpose: a Lake's catalog connection belongs to one thread. Code that
// reads the catalog (ingests, files) opens its own Lake, which is cheap; what is expensive to open
// and worth sharing is the engine.
//
// Thread-safety: everything here may be used from any thread; the engine runs one query at a time.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>

#include "engage/core/clock.h"
#include "engage/core/config.h"
#include "engage/core/home.h"
#include "engage/core/status.h"
#include "engage/lake/lake.h"
#include "engage/sql/query.h"

namespace engage::app {

class Monitoring;

class ReadSide {
 public:
  const Config& config() const { return lake_->config(); }
  sql::QueryEngine& query() { return *query_; }

 private:
  friend class ReadSides;
  ReadSide() = default;
  std::unique_ptr<lake::Lake> lake_;  // the engine's: config, clock and paths only
  std::unique_ptr<sql::QueryEngine> query_;
};

class ReadSides {
 public:
  // Opens the first read side: kNotFound (with a hint to run `engage init`) without a home.
  // `threads`: DuckDB threads of the engine, 0 = all cores.
  // `monitoring` (optional) is installed on every engine opened (budgets, alerts).
  static Result<std::shared_ptr<ReadSides>> Open(const HomePaths& home, const Clock& clock,
                                                 int threads,
                                                 std::shared_ptr<Monitoring> monitoring = nullptr);

  // The current read side, reopened first if engage.toml changed since it was opened. When the
  // edited config does not load, the previous read side stays current (a warning is logged).
  Result<std::shared_ptr<ReadSide>> Current();

  // What the engines are monitored with (null: nothing is).
  Monitoring* monitoring() const { return monitoring_.get(); }

  // How many read sides were opened (tests).
  int64_t opens() const;

 private:
  struct Stamp {
    ino_t inode = 0;
    off_t size = -1;
    int64_t mtime_ns = -1;
    bool operator==(const Stamp&) const = default;
  };
  ReadSides(HomePaths home, const Clock& clock, int threads, std::shared_ptr<Monitoring> monitoring)
      : home_(std::move(home)),
        clock_(clock),
        threads_(threads),
        monitoring_(std::move(monitoring)) {}
  Stamp ConfigStamp() const;
  Result<std::shared_ptr<ReadSide>> OpenSide() const;

  const HomePaths home_;
  const Clock& clock_;
  const int threads_;
  const std::shared_ptr<Monitoring> monitoring_;
  mutable std::mutex mu_;
  std::shared_ptr<ReadSide> current_;  // guarded by mu_
  Stamp stamp_;                        // of engage.toml when current_ was opened; guarded by mu_
  int64_t opens_ = 0;                  // guarded by mu_
};

}  // namespace engage::app
