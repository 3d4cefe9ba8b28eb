#include "engage/app/timeline.h"

#include <fmt/format.h>

#include "engage/core/text.h"

namespace engage::app {

StateTimeline::StateTimeline(const flow::StateMachine& machine,
                             std::function<void(const std::string&)> live)
    : live_(std::move(live)) {
  for (const auto& [name, state] : machine.states) top_level_.insert(name);
}

void StateTimeline::End(Row& r, int64_t at) {
  r.end = at;
  if (live_)
    live_(fmt::format("  {:<24} {:7.1f} s  {}\n", r.state, (r.end - r.start) / 1e6, r.result));
  current_ = -1;
}

void StateTimeline::OnEvent(const flow::Event& e) {
  std::lock_guard<std::mutex> lock(mu_);
  auto ends_with = [&e](std::string_view suffix) {
    return e.type.size() > suffix.size() &&
           e.type.compare(e.type.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  const bool details = e.details.is_object();
  std::string name = details ? e.details.value("name", "") : "";
  if (ends_with("StateEntered") && top_level_.count(name) > 0 && current_ < 0) {
    rows_.push_back(Row{name, e.timestamp_micros, 0, "running"});
    current_ = static_cast<int64_t>(rows_.size()) - 1;
    if (live_) live_(fmt::format("  {:<24} ...\n", name));
  } else if (current_ < 0) {
    return;
  } else if (e.type == "TaskSucceeded") {
    rows_[current_].result = Brief(details ? e.details.value("output", "") : "");
  } else if (ends_with("StateExited") && rows_[current_].state == name) {
    Row& r = rows_[current_];
    if (r.result == "running") r.result = "ok";
    End(r, e.timestamp_micros);
  } else if (e.type == "ExecutionFailed" || e.type == "ExecutionAborted" ||
             e.type == "ExecutionTimedOut") {
    Row& r = rows_[current_];
    std::string error = details ? e.details.value("error", "") : "";
    r.result = (e.type == "ExecutionFailed" ? "FAILED" : e.type.substr(9)) +
               (error.empty() ? "" : ": " + error);
    End(r, e.timestamp_micros);
  }
}

std::string StateTimeline::Table() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::vector<std::string>> rows;
  for (const Row& r : rows_) {
    rows.push_back(
        {r.state, r.end > 0 ? fmt::format("{:.1f}", (r.end - r.start) / 1e6) : "", r.result});
  }
  return FormatTable({"state", "seconds", "result"}, rows);
}

std::string StateTimeline::Brief(const std::string& output_json) {
  Json j = Json::parse(output_json, nullptr, false);
  std::string s;
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it->is_structured() || it->is_null()) continue;
      std::string v = it->is_number_float()
                          ? fmt::format("{:.4g}", it->get<double>())
                          : (it->is_string() ? it->get<std::string>() : it->dump());
      s += (s.empty() ? "" : " ") + it.key() + "=" + v;
    }
  }
  if (s.empty()) s = "ok";
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

std::string StateTimeline::Report(const flow::ExecutionRecord& record,
                                  const flow::ExecutionResult& result) const {
  std::string out = fmt::format("execution {} ({}): {}\n", record.name, record.id,
                                flow::ExecutionStatusName(result.status));
  out += Table();
  if (result.error) out += fmt::format("error: {}\n", *result.error);
  if (result.cause) out += fmt::format("cause: {}\n", *result.cause);
  return out +
         fmt::format("full output: engage flow describe {}   history: engage flow history {}\n",
                     record.id, record.id);
}

}  // namespace engage::app
