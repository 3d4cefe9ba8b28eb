// The top-level states of an execution as they run, from its events: each state's start, end,
// seconds and result in a line (`engage run pipeline` shows them live on a terminal and as a
// table at the end).
//
//   StateTimeline timeline(*machine, [](const std::string& line) { std::fputs(...); });
//   request.on_event = [&timeline](const flow::Event& e) { timeline.OnEvent(e); };
//   ... after the run: std::fputs(timeline.Table().c_str(), stdout);
//
// Thread-safety: OnEvent may be called from the execution's thread while another reads Table().
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "engage/flow/definition.h"
#include "engage/flow/store.h"

namespace engage::app {

class StateTimeline {
 public:
  // `live` (optional) receives a line as each top-level state starts ("  Train  ...") and ends
  // ("  Train  12.3 s  auc=0.81 ...").
  StateTimeline(const flow::StateMachine& machine, std::function<void(const std::string&)> live);

  void OnEvent(const flow::Event& e);

  // state | seconds | result, one row per top-level state entered, as an aligned table.
  std::string Table() const;
  // What `engage run pipeline` prints at the end: the execution and its status, Table(), the
  // error and cause if any, and the commands showing the full output and history.
  std::string Report(const flow::ExecutionRecord& record,
                     const flow::ExecutionResult& result) const;

  // A task's output in a line: its scalar fields as key=value, cut to 60 characters ("ok" when
  // it has none).
  static std::string Brief(const std::string& output_json);

 private:
  struct Row {
    std::string state;
    int64_t start = 0, end = 0;
    std::string result;
  };
  void End(Row& r, int64_t at);  // requires mu_

  mutable std::mutex mu_;
  std::function<void(const std::string&)> live_;
  std::set<std::string> top_level_;
  std::vector<Row> rows_;
  int64_t current_ = -1;  // index in rows_ of the state running, -1 between states
};

}  // namespace engage::app
