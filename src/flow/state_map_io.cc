// A distributed Map's ItemReader, ItemBatcher and ResultWriter over the local S3 stand-in
// (EngineOptions::bucket_dir); the formats themselves are parsed and written in item_io.cc.

#include <fmt/format.h>

#include <string>
#include <vector>

#include "engage/core/fs.h"
#include "flow/engine_internal.h"
#include "flow/util_internal.h"

namespace engage::flow {

Flow<Json> Engine::Impl::IoParameters(const std::optional<Template>& t, const Json& raw,
                                      const Json& eff, const StateRun& sr, const VarScope& vars) {
  if (!t) return Json::object();
  if (sr.state->language == QueryLanguage::kJsonata) {
    StatesVar sv;
    sv.input = &raw;
    return EvalJsonata(*t, sv, sr, vars);
  }
  return EvalPathTemplate(*t, eff, sr, vars);
}

Flow<int64_t> Engine::Impl::IoCount(const Json& obj, const std::string& field, int64_t absent,
                                    const Json& raw, const Json& eff, const StateRun& sr,
                                    const VarScope& vars) {
  Json v;
  if (auto it = obj.find(field); it != obj.end()) {
    v = *it;
    if (it->is_string()) {
      Template t;
      // Compiled at validation; compile again here (rare: once per Map state run).
      std::string text = it->get<std::string>();
      if (text.size() >= 4 && text.compare(0, 2, "{%") == 0) text = text.substr(2, text.size() - 4);
      auto expr = jsonata::Expression::Compile(text);
      if (!expr.ok())
        return QueryError(sr, fmt::format("invalid {}: {}", field, expr.error().message));
      t.kind = Template::Kind::kJsonata;
      t.source = text;
      t.field = field;
      t.expr = std::make_shared<jsonata::Expression>(std::move(expr).value());
      StatesVar sv;
      sv.input = &raw;
      FLOW_ASSIGN_OR_RETURN(v, EvalJsonata(t, sv, sr, vars));
    }
  } else if (auto p = obj.find(field + "Path"); p != obj.end() && p->is_string()) {
    auto path = JsonPath::Parse(p->get<std::string>());
    Result<Json> r = path.ok() ? ResolvePath(*path, eff, sr, vars) : Result<Json>(path.status());
    if (!r.ok() && IsDataLimit(r.status())) return DataLimitFailure(sr, r.status());
    if (!r.ok()) {
      return RuntimeError(sr, fmt::format("Invalid path '{}' for {}Path: {}", p->get<std::string>(),
                                          field, r.status().message()));
    }
    v = std::move(r).value();
  } else {
    return absent;
  }
  if (!v.is_number() || v.get<double>() < 0) {
    return RuntimeError(
        sr, fmt::format("{} must be a non-negative integer, but was: {}", field, DumpJson(v)));
  }
  return static_cast<int64_t>(v.get<double>());
}

Flow<std::string> Engine::Impl::BucketDir(const std::string& bucket, const char* error,
                                          bool for_write, const StateRun& sr) {
  if (!opt.bucket_dir) {
    return Failure{error, Prefix(sr) + "no local S3 stand-in is configured for this run"};
  }
  Result<std::string> dir = opt.bucket_dir(bucket, for_write);
  if (!dir.ok()) return Failure{error, Prefix(sr) + dir.status().message()};
  return std::move(dir).value();
}

Flow<Json> Engine::Impl::ReadItems(const State& st, const Json& raw, const Json& eff,
                                   const StateRun& sr, const VarScope& vars) {
  static const char* kError = "States.ItemReaderFailed";
  const Json& reader = st.item_reader;
  const Json cfg = reader.value("ReaderConfig", Json::object());
  FLOW_ASSIGN_OR_RETURN(Json params, IoParameters(st.reader_parameters, raw, eff, sr, vars));
  FLOW_ASSIGN_OR_RETURN(int64_t max_items, IoCount(cfg, "MaxItems", -1, raw, eff, sr, vars));
  if (max_items == 0) max_items = -1;  // 0 means no limit, as on AWS
  if (!params.is_object() || !params.contains("Bucket") || !params["Bucket"].is_string()) {
    return Failure{kError, Prefix(sr) + "ItemReader parameters need a string Bucket"};
  }
  FLOW_ASSIGN_OR_RETURN(std::string dir,
                        BucketDir(params["Bucket"].get<std::string>(), kError, false, sr));
  auto fail = [&](const Status& s) { return Failure{kError, Prefix(sr) + s.message()}; };
  if (reader.value("Resource", "") == "arn:aws:states:::s3:listObjectsV2") {
    // Parameters are evaluated at run time: a Prefix of another type is the reader's failure
    // (Json::value would throw).
    if (params.contains("Prefix") && !params["Prefix"].is_string()) {
      return Failure{kError, Prefix(sr) + "ItemReader parameter Prefix must be a string"};
    }
    std::string prefix = params.value("Prefix", "");
    Result<Json> r = internal::ListObjects(dir, prefix, max_items);
    if (!r.ok()) return fail(r.status());
    return std::move(r).value();
  }
  if (!params.contains("Key") || !params["Key"].is_string()) {
    return Failure{kError, Prefix(sr) + "s3:getObject needs a string Key"};
  }
  std::string key = params["Key"].get<std::string>();
  Result<std::string> path = internal::ObjectPath(dir, key);
  if (!path.ok()) return fail(path.status());
  std::string type = cfg.value("InputType", "JSON");
  std::string origin = fmt::format("s3://{}/{}", params["Bucket"].get<std::string>(), key);
  if (type == "PARQUET") {
    if (!opt.read_parquet) {
      return Failure{kError, Prefix(sr) + "PARQUET input is not available in this build"};
    }
    Result<Json> r = opt.read_parquet(*path, max_items);
    if (!r.ok()) return fail(r.status());
    return std::move(r).value();
  }
  Result<std::string> text = PosixFileSystem::Default()->ReadFile(*path);
  if (!text.ok()) {
    return Failure{kError, Prefix(sr) + fmt::format("cannot read {} ({}): {}", origin, *path,
                                                    text.status().message())};
  }
  Result<Json> items = Json();
  if (type == "CSV") {
    internal::CsvOptions co;
    Result<char> d = internal::CsvDelimiterFor(cfg.value("CSVDelimiter", "COMMA"));
    if (!d.ok()) return fail(d.status());
    co.delimiter = *d;
    co.header_first_row = cfg.value("CSVHeaderLocation", "FIRST_ROW") == "FIRST_ROW";
    if (!co.header_first_row) co.headers = cfg.value("CSVHeaders", std::vector<std::string>{});
    items = internal::ParseCsvItems(*text, co, max_items, origin);
  } else if (type == "MANIFEST") {
    // An S3 Inventory-style manifest: one "bucket,key" CSV line per object.
    internal::CsvOptions co;
    co.header_first_row = false;
    co.headers = {"Bucket", "Key"};
    items = internal::ParseCsvItems(*text, co, max_items, origin);
  } else {
    items = internal::ParseJsonItems(*text, type == "JSONL", max_items, origin);
  }
  if (!items.ok()) return fail(items.status());
  return std::move(items).value();
}

Flow<Json> Engine::Impl::BatchMapItems(const State& st, Json items, const Json& raw,
                                       const Json& eff, const StateRun& sr, const VarScope& vars) {
  const bool jsonata = st.language == QueryLanguage::kJsonata;
  if (st.parameters || st.arguments) {
    StatesVar sv;
    sv.input = &raw;
    for (size_t i = 0; i < items.size(); ++i) {
      StateRun isr = sr;
      isr.map_item_value = &items[i];
      isr.map_item_index = static_cast<int64_t>(i);
      Json selected;
      if (jsonata) {
        FLOW_ASSIGN_OR_RETURN(selected, EvalJsonata(*st.arguments, sv, isr, vars));
      } else {
        FLOW_ASSIGN_OR_RETURN(selected, EvalPathTemplate(*st.parameters, eff, isr, vars));
      }
      items[i] = std::move(selected);
    }
  }
  internal::BatchLimits limits;
  FLOW_ASSIGN_OR_RETURN(limits.max_items,
                        IoCount(st.item_batcher, "MaxItemsPerBatch", 0, raw, eff, sr, vars));
  FLOW_ASSIGN_OR_RETURN(limits.max_bytes,
                        IoCount(st.item_batcher, "MaxInputBytesPerBatch", 0, raw, eff, sr, vars));
  Json batch_input;
  if (st.batch_input) {
    FLOW_ASSIGN_OR_RETURN(batch_input, IoParameters(st.batch_input, raw, eff, sr, vars));
  }
  return internal::BatchItems(items, limits, batch_input);
}

Flow<Json> Engine::Impl::WriteMapResults(const State& st,
                                         const std::vector<internal::ChildOutcome>& outcomes,
                                         const std::string& map_run_id, const Json& raw,
                                         const Json& eff, const StateRun& sr,
                                         const VarScope& vars) {
  static const char* kError = "States.ResultWriterFailed";
  const Json& w = st.result_writer;
  internal::ResultWriterSpec spec;
  const Json cfg = w.value("WriterConfig", Json::object());
  spec.output_type = cfg.value("OutputType", "JSON");
  spec.transformation = w.contains("WriterConfig") ? cfg.value("Transformation", "NONE") : "";
  std::string sm_name = ctx_state_machine.value("Name", "StateMachine");
  std::string label = st.label.empty() ? st.name : st.label;
  spec.map_run_id = map_run_id;
  spec.map_run_arn = fmt::format("arn:aws:states:{}:{}:mapRun:{}/{}:{}", opt.region, opt.account,
                                 sm_name, label, map_run_id);
  spec.state_machine_arn = fmt::format("arn:aws:states:{}:{}:stateMachine:{}/{}", opt.region,
                                       opt.account, sm_name, label);
  spec.execution_arn_prefix =
      fmt::format("arn:aws:states:{}:{}:execution:{}/{}:", opt.region, opt.account, sm_name, label);
  if (w.contains("Resource")) {
    FLOW_ASSIGN_OR_RETURN(Json params, IoParameters(st.writer_parameters, raw, eff, sr, vars));
    if (!params.is_object() || !params.contains("Bucket") || !params["Bucket"].is_string()) {
      return Failure{kError, Prefix(sr) + "ResultWriter parameters need a string Bucket"};
    }
    spec.bucket = params["Bucket"].get<std::string>();
    if (params.contains("Prefix") && !params["Prefix"].is_string()) {
      return Failure{kError, Prefix(sr) + "ResultWriter parameter Prefix must be a string"};
    }
    spec.prefix = params.value("Prefix", "");
    FLOW_ASSIGN_OR_RETURN(spec.bucket_dir, BucketDir(spec.bucket, kError, true, sr));
  }
  Result<Json> out = internal::WriteResults(outcomes, spec);
  if (!out.ok()) return Failure{kError, Prefix(sr) + out.status().message()};
  return std::move(out).value();
}

}  // namespace engage::flow
