// Executions, their histories and conformance reports as text for people (`engage flow
// describe|list|history|conformance`).
#include "engage/core/text.h"

#include <fmt/format.h>

#include "engage/core/clock.h"
#include "engage/flow/conformance.h"
#include "engage/flow/registry.h"
#include "engage/flow/store.h"

namespace engage::flow {

std::string ExecutionRecord::ToText() const {
  std::string out;
  auto field = [&out](const char* label, const std::string& value) {
    out += fmt::format("{:<15}{}\n", std::string(label) + ":", value);
  };
  field("execution", id);
  field("name", name);
  field("state machine", state_machine);
  field("status", status);
  field("started", FormatIsoUtc(start_micros));
  if (stop_micros) field("stopped", FormatIsoUtc(*stop_micros));
  if (redrive_count > 0) field("redrives", std::to_string(redrive_count));
  if (!definition_path.empty()) field("definition", definition_path);
  field("input", DumpJson(input));
  if (output) field("output", DumpJson(*output));
  if (error) field("error", *error);
  if (cause) field("cause", *cause);
  return out;
}

std::string ExecutionsTable(const std::vector<ExecutionRecord>& executions) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : executions) {
    std::string took =
        r.stop_micros ? fmt::format("{:.3f}s", (*r.stop_micros - r.start_micros) / 1e6) : "";
    rows.push_back({r.id, r.name, r.state_machine, r.status, FormatIsoUtc(r.start_micros), took,
                    r.error.value_or("")});
  }
  return FormatTable({"id", "name", "state machine", "status", "started", "duration", "error"},
                     rows);
}

std::string HistoryTable(const std::vector<Event>& events) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : events) {
    std::string detail;
    if (e.details.is_object()) {
      if (e.details.contains("name")) detail = e.details["name"].get<std::string>();
      if (e.details.contains("error")) {
        detail += (detail.empty() ? "" : " ") + e.details["error"].get<std::string>();
      }
      if (e.details.contains("index")) detail += fmt::format(" #{}", e.details["index"].dump());
    }
    rows.push_back({std::to_string(e.id), std::to_string(e.previous_event_id),
                    FormatIsoUtc(e.timestamp_micros), e.type, detail});
  }
  return FormatTable({"id", "prev", "time", "type", "detail"}, rows);
}

std::string ConformanceReportText(const Json& report, const char* groups, const char* label) {
  std::vector<std::vector<std::string>> rows;
  auto row = [&rows](const std::string& name, const Json& c) {
    rows.push_back({name, std::to_string(c["passed"].get<int64_t>()),
                    std::to_string(c["total"].get<int64_t>()),
                    fmt::format("{:.1f}%", 100 * c["rate"].get<double>())});
  };
  for (auto it = report[groups].begin(); it != report[groups].end(); ++it) row(it.key(), *it);
  row("overall", report["overall"]);
  std::string out = FormatTable({label, "passed", "total", "rate"}, rows);
  if (!report["failures"].empty()) out += "\nfailures (first difference):\n";
  for (const Json& f : report["failures"]) {
    out += fmt::format("  {}{}\n    {}\n", f.value("case", f.value("id", "")),
                       f.value("cause_only", false) ? " [cause text only]" : "",
                       f["detail"].get<std::string>());
  }
  return out;
}

Json ExecutionsJson(const std::vector<ExecutionRecord>& executions) {
  Json arr = Json::array();
  for (const auto& r : executions) {
    arr.push_back(r.ToJson());
    arr.back().erase("input");
    arr.back().erase("output");
  }
  return arr;
}

Json HistoryJson(const std::vector<Event>& events) {
  Json arr = Json::array();
  for (const auto& e : events) arr.push_back(e.ToJson());
  return arr;
}

std::string MachinesTable(const std::vector<RegisteredStateMachine>& machines) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& m : machines) {
    rows.push_back(
        {m.name, std::to_string(m.version), m.registered_by, FormatIsoUtc(m.updated_micros)});
  }
  return FormatTable({"name", "version", "registered by", "updated"}, rows);
}

}  // namespace engage::flow
