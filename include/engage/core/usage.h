// What a piece of work used on this machine (CPU, wall time, bytes read and written, memory),
// and the scope it ran in, so that the cost ledger can say what a query, step, execution or
// training run used and what it belonged to.
//
//   UsageMeter meter;                       // starts measuring
//   ... work ...
//   Usage used = meter.Stop();
//
//   CostScope scope({.execution_id = id, .pipeline = "engagement", .step = "train"});
//   ... queries and training run here are recorded with this execution, pipeline and step ...
//
// CPU seconds and bytes are the whole process's (getrusage, /proc/self/io) over the work's wall
// time: exact for a command, an upper bound when other work runs in the same process at once.
// Peak memory is the process's high-water mark (VmHWM) when the work ended.
//
// Thread-safety: a UsageMeter belongs to one thread. A CostScope applies to the thread that
// creates it (a query sees the scope of the thread running it); scopes nest.
#pragma once

#include <cstdint>
#include <string>

#include "engage/core/json.h"

namespace engage {

struct Usage {
  double cpu_seconds = 0;
  double wall_seconds = 0;
  int64_t bytes_read = 0;
  int64_t bytes_written = 0;
  int64_t peak_memory_bytes = 0;  // 0: unknown
  // {"cpu_seconds", "wall_seconds", "bytes_read", "bytes_written", "peak_memory_bytes"}
  Json ToJson() const;
  Usage& operator+=(const Usage& o);
};

// The process's counters now (the wall clock is monotonic).
struct UsageSample {
  double cpu_seconds = 0;
  double monotonic_seconds = 0;
  int64_t bytes_read = 0;
  int64_t bytes_written = 0;
  static UsageSample Now();
};
// The process's high-water mark of resident memory, in bytes (0 when unknown).
int64_t PeakMemoryBytes();

class UsageMeter {
 public:
  UsageMeter() : start_(UsageSample::Now()) {}
  // What was used since construction.
  Usage Stop() const;

 private:
  UsageSample start_;
};

// Where work belongs, for the ledger. Empty fields: not known / top level.
struct CostContext {
  std::string parent;        // id of the ledger scope this work runs in ("" = top level)
  std::string execution_id;  // the state machine execution
  std::string pipeline;      // the state machine's name
  std::string step;          // the pipeline step (the Task's resource, e.g. "train")
  std::string model;         // the model being trained, scored or published
};

// The calling thread's context (empty outside any scope).
const CostContext& CurrentCostContext();

// Sets the calling thread's context for its lifetime; fields left empty in `context` inherit the
// enclosing scope's, and `parent` becomes this scope's id when `id` is given.
class CostScope {
 public:
  explicit CostScope(CostContext context, const std::string& id = "");
  ~CostScope();
  CostScope(const CostScope&) = delete;
  CostScope& operator=(const CostScope&) = delete;
  const CostContext& enclosing() const { return saved_; }

 private:
  CostContext saved_;
};

}  // namespace engage
