#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "engage/core/clock.h"
#include "engage/core/fs.h"
#include "engage/core/ids.h"
#include "flow/item_io_internal.h"

namespace engage::flow::internal {

namespace fs = std::filesystem;

Result<char> CsvDelimiterFor(std::string_view name) {
  if (name == "COMMA") return ',';
  if (name == "PIPE") return '|';
  if (name == "SEMICOLON") return ';';
  if (name == "SPACE") return ' ';
  if (name == "TAB") return '\t';
  return InvalidArgumentError(fmt::format("unknown CSVDelimiter '{}'", name));
}

namespace {

// Splits CSV text into records of fields; `lines` receives each record's first line number.
Result<std::vector<std::vector<std::string>>> SplitCsv(std::string_view text, char delim,
                                                       const std::string& origin,
                                                       std::vector<int64_t>* lines) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, field_started = false;
  int64_t line = 1, row_line = 1;
  auto end_row = [&] {
    row.push_back(std::move(field));
    field.clear();
    field_started = false;
    // A blank line is no record.
    if (!(row.size() == 1 && row[0].empty())) {
      rows.push_back(std::move(row));
      lines->push_back(row_line);
    }
    row.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == '"' && !field_started) {
      quoted = true;
      field_started = true;
    } else if (c == delim) {
      row.push_back(std::move(field));
      field.clear();
      field_started = false;
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      continue;
    } else if (c == '\n') {
      end_row();
      row_line = ++line;
    } else {
      field += c;
      field_started = true;
    }
  }
  if (quoted) {
    return InvalidArgumentError(
        fmt::format("{}: line {}: unterminated quoted field", origin, row_line));
  }
  if (field_started || !field.empty() || !row.empty()) end_row();
  return rows;
}

}  // namespace

Result<Json> ParseCsvItems(std::string_view text, const CsvOptions& options, int64_t max_items,
                           const std::string& origin) {
  std::vector<int64_t> lines;
  ENGAGE_ASSIGN_OR_RETURN(auto rows, SplitCsv(text, options.delimiter, origin, &lines));
  std::vector<std::string> header = options.headers;
  size_t first = 0;
  if (options.header_first_row) {
    if (rows.empty()) return Json::array();
    header = rows[0];
    first = 1;
  }
  if (header.empty()) return InvalidArgumentError(fmt::format("{}: no CSV header", origin));
  Json items = Json::array();
  for (size_t r = first; r < rows.size(); ++r) {
    if (max_items >= 0 && static_cast<int64_t>(items.size()) >= max_items) break;
    if (rows[r].size() > header.size()) {
      return InvalidArgumentError(fmt::format("{}: line {}: {} fields but the header has {}",
                                              origin, lines[r], rows[r].size(), header.size()));
    }
    Json item = Json::object();
    for (size_t c = 0; c < header.size(); ++c) {
      item[header[c]] = c < rows[r].size() ? rows[r][c] : std::string();
    }
    items.push_back(std::move(item));
  }
  return items;
}

Result<Json> ParseJsonItems(std::string_view text, bool lines, int64_t max_items,
                            const std::string& origin) {
  Json items = Json::array();
  if (!lines) {
    // An item nested deeper than kMaxJsonDepth would overflow the stack when copied later.
    if (JsonTextDepth(text, kMaxJsonDepth + 1) > kMaxJsonDepth + 1) {
      return InvalidArgumentError(
          fmt::format("{}: JSON nested deeper than {} levels (in the "
                      "array of items)",
                      origin, kMaxJsonDepth));
    }
    Json doc = Json::parse(text, nullptr, false);
    if (doc.is_discarded()) {
      return InvalidArgumentError(fmt::format("{}: not valid JSON", origin));
    }
    if (!doc.is_array()) {
      return InvalidArgumentError(
          fmt::format("{}: InputType JSON needs a JSON array, got {}", origin, doc.type_name()));
    }
    for (Json& v : doc) {
      if (max_items >= 0 && static_cast<int64_t>(items.size()) >= max_items) break;
      items.push_back(std::move(v));
    }
    return items;
  }
  int64_t line = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view l =
        text.substr(pos, nl == std::string_view::npos ? text.size() - pos : nl - pos);
    ++line;
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    if (l.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    if (max_items >= 0 && static_cast<int64_t>(items.size()) >= max_items) break;
    if (JsonTextDepth(l) > kMaxJsonDepth) {
      return InvalidArgumentError(fmt::format("{}: line {}: JSON nested deeper than {} levels",
                                              origin, line, kMaxJsonDepth));
    }
    Json v = Json::parse(l, nullptr, false);
    if (v.is_discarded()) {
      return InvalidArgumentError(fmt::format("{}: line {}: not valid JSON", origin, line));
    }
    items.push_back(std::move(v));
  }
  return items;
}

Result<std::string> ObjectPath(const std::string& dir, const std::string& key) {
  if (key.empty() || key[0] == '/') {
    return InvalidArgumentError(fmt::format("object key '{}' must be a relative path", key));
  }
  for (const auto& part : fs::path(key)) {
    if (part == "..") {
      return InvalidArgumentError(
          fmt::format("object key '{}' may not leave its bucket ('..')", key));
    }
  }
  return (fs::path(dir) / key).string();
}

Result<Json> ListObjects(const std::string& dir, const std::string& prefix, int64_t max_items) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return NotFoundError(fmt::format("bucket directory '{}' does not exist", dir));
  }
  std::vector<std::pair<std::string, fs::path>> found;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string key = fs::relative(it->path(), dir, ec).generic_string();
    if (key.compare(0, prefix.size(), prefix) == 0) found.emplace_back(key, it->path());
  }
  if (ec) return InternalError(fmt::format("listing '{}': {}", dir, ec.message()));
  std::sort(found.begin(), found.end());
  Json items = Json::array();
  for (const auto& [key, path] : found) {
    if (max_items >= 0 && static_cast<int64_t>(items.size()) >= max_items) break;
    struct stat sb {};
    if (::stat(path.c_str(), &sb) != 0) continue;
    int64_t mtime_us = static_cast<int64_t>(sb.st_mtim.tv_sec) * 1000000 +
                       static_cast<int64_t>(sb.st_mtim.tv_nsec) / 1000;
    items.push_back(Json{{"Etag", fmt::format("\"{:x}-{:x}\"", sb.st_ino, mtime_us)},
                         {"Key", key},
                         {"LastModified", FormatIsoUtc(mtime_us)},
                         {"Size", static_cast<int64_t>(sb.st_size)},
                         {"StorageClass", "STANDARD"}});
  }
  return items;
}

Json BatchItems(const Json& items, const BatchLimits& limits, const Json& batch_input) {
  Json batches = Json::array();
  Json current = Json::array();
  int64_t bytes = 0;
  auto flush = [&] {
    if (current.empty()) return;
    Json b = Json::object();
    if (!batch_input.is_null()) b["BatchInput"] = batch_input;
    b["Items"] = std::move(current);
    batches.push_back(std::move(b));
    current = Json::array();
    bytes = 0;
  };
  for (const Json& item : items) {
    int64_t size = limits.max_bytes > 0 ? static_cast<int64_t>(DumpJson(item).size()) : 0;
    bool full =
        (limits.max_items > 0 && static_cast<int64_t>(current.size()) >= limits.max_items) ||
        (limits.max_bytes > 0 && !current.empty() && bytes + size > limits.max_bytes);
    if (full) flush();
    current.push_back(item);
    bytes += size;
  }
  flush();
  return batches;
}

namespace {

Json Record(const ChildOutcome& o, const ResultWriterSpec& spec, bool as_strings) {
  Json r = Json::object();
  r["ExecutionArn"] = spec.execution_arn_prefix + o.name;
  r["Input"] = as_strings ? Json(DumpJson(o.input)) : o.input;
  r["InputDetails"] = Json{{"Included", true}};
  r["Name"] = o.name;
  if (o.succeeded) {
    r["Output"] = as_strings ? Json(DumpJson(o.output)) : o.output;
    r["OutputDetails"] = Json{{"Included", true}};
  } else {
    r["Error"] = o.error;
    r["Cause"] = o.cause;
  }
  r["RedriveCount"] = 0;
  r["RedriveStatus"] = "NOT_REDRIVABLE";
  r["RedriveStatusReason"] = o.succeeded ? "Execution is SUCCEEDED and cannot be redriven"
                                         : "Execution is RUNNING and cannot be redriven";
  r["StartDate"] = FormatIsoUtc(o.start_micros);
  r["StateMachineArn"] = spec.state_machine_arn;
  r["Status"] = o.succeeded ? "SUCCEEDED" : "FAILED";
  r["StopDate"] = FormatIsoUtc(o.stop_micros);
  return r;
}

std::string Serialize(const Json& records, const std::string& output_type) {
  if (output_type != "JSONL") return DumpJson(records);
  std::string out;
  for (const Json& r : records) out += DumpJson(r) + "\n";
  return out;
}

}  // namespace

Result<Json> WriteResults(const std::vector<ChildOutcome>& outcomes, const ResultWriterSpec& spec) {
  // Transformation: without WriterConfig the classic records (Input/Output as JSON text); NONE
  // keeps records with JSON values; COMPACT keeps the outputs; FLATTEN also flattens arrays.
  Json succeeded = Json::array(), failed = Json::array();
  for (const ChildOutcome& o : outcomes) {
    Json& dest = o.succeeded ? succeeded : failed;
    if (spec.transformation.empty() || spec.transformation == "NONE" || !o.succeeded) {
      dest.push_back(Record(o, spec, spec.transformation.empty()));
    } else if (spec.transformation == "FLATTEN" && o.output.is_array()) {
      for (const Json& v : o.output) dest.push_back(v);
    } else {
      dest.push_back(o.output);
    }
  }
  if (spec.bucket.empty()) {
    if (failed.empty()) return succeeded;
    Json all = succeeded;
    for (Json& f : failed) all.push_back(std::move(f));
    return all;
  }
  std::string ext = spec.output_type == "JSONL" ? "jsonl" : "json";
  std::string base = spec.prefix.empty() ? spec.map_run_id : spec.prefix + "/" + spec.map_run_id;
  while (!base.empty() && base[0] == '/') base.erase(0, 1);
  auto fsys = PosixFileSystem::Default();
  Json files =
      Json{{"FAILED", Json::array()}, {"PENDING", Json::array()}, {"SUCCEEDED", Json::array()}};
  auto write = [&](const char* kind, const Json& records) -> Status {
    if (records.empty()) return Status::Ok();
    std::string key = fmt::format("{}/{}_0.{}", base, kind, ext);
    ENGAGE_ASSIGN_OR_RETURN(std::string path, ObjectPath(spec.bucket_dir, key));
    std::string data = Serialize(records, spec.output_type);
    ENGAGE_RETURN_IF_ERROR(fsys->CreateDirs(fs::path(path).parent_path().string()));
    ENGAGE_RETURN_IF_ERROR(fsys->WriteFileAtomic(path, data));
    files[kind].push_back(Json{{"Key", key}, {"Size", static_cast<int64_t>(data.size())}});
    return Status::Ok();
  };
  ENGAGE_RETURN_IF_ERROR(write("SUCCEEDED", succeeded));
  ENGAGE_RETURN_IF_ERROR(write("FAILED", failed));
  std::string manifest_key = base + "/manifest.json";
  Json manifest = Json{
      {"DestinationBucket", spec.bucket}, {"MapRunArn", spec.map_run_arn}, {"ResultFiles", files}};
  ENGAGE_ASSIGN_OR_RETURN(std::string manifest_path, ObjectPath(spec.bucket_dir, manifest_key));
  ENGAGE_RETURN_IF_ERROR(fsys->CreateDirs(fs::path(manifest_path).parent_path().string()));
  ENGAGE_RETURN_IF_ERROR(fsys->WriteFileAtomic(manifest_path, DumpJson(manifest)));
  return Json{{"MapRunArn", spec.map_run_arn},
              {"ResultWriterDetails", Json{{"Bucket", spec.bucket}, {"Key", manifest_key}}}};
}

}  // namespace engage::flow::internal
