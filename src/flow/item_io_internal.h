// Distributed Map's data sources and sinks, on the local stand-in for Amazon S3 (a directory per
// bucket): ItemReader (s3:getObject with JSON, JSONL, CSV, MANIFEST or PARQUET input, and
// s3:listObjectsV2), ItemBatcher and ResultWriter (s3:putObject).
//
// Errors are Status values; the engine reports them as States.ItemReaderFailed /
// States.ResultWriterFailed naming the state.
//
// Thread-safety: pure functions apart from the files they read and write.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engage/core/json.h"
#include "engage/core/status.h"

namespace engage::flow::internal {

struct CsvOptions {
  char delimiter = ',';
  bool header_first_row = true;      // CSVHeaderLocation FIRST_ROW
  std::vector<std::string> headers;  // CSVHeaderLocation GIVEN
};

// "COMMA" -> ',', ... ; kInvalidArgument for other names.
Result<char> CsvDelimiterFor(std::string_view name);

// Rows of a CSV document as objects of strings keyed by the header (RFC 4180 quoting; CRLF or
// LF line ends; a row with more fields than the header is an error naming the line).
// `max_items` < 0: all rows.
Result<Json> ParseCsvItems(std::string_view text, const CsvOptions& options, int64_t max_items,
                           const std::string& origin);

// A JSON document holding an array (JSON) or one JSON value per line (JSONL).
Result<Json> ParseJsonItems(std::string_view text, bool lines, int64_t max_items,
                            const std::string& origin);

// The path of `key` in bucket directory `dir`; kInvalidArgument when the key is empty, absolute
// or climbs out of the bucket ("..").
Result<std::string> ObjectPath(const std::string& dir, const std::string& key);

// s3:listObjectsV2 over a bucket directory: every regular file below `dir` whose key starts
// with `prefix`, sorted by key, as {"Key", "Size", "LastModified", "Etag", "StorageClass"}.
Result<Json> ListObjects(const std::string& dir, const std::string& prefix, int64_t max_items);

struct BatchLimits {
  int64_t max_items = 0;  // 0: no limit
  int64_t max_bytes = 0;  // 0: no limit (bytes of the serialized batch items)
};

// Groups `items` into batches of at most max_items items and max_bytes bytes (an item larger
// than max_bytes on its own still forms a batch), each {"Items": [...]} plus "BatchInput" when
// `batch_input` is not null.
Json BatchItems(const Json& items, const BatchLimits& limits, const Json& batch_input);

// One child execution's outcome, as a ResultWriter record.
struct ChildOutcome {
  std::string name;
  bool succeeded = false;
  Json input;
  Json output;  // succeeded
  std::string error, cause;
  int64_t start_micros = 0, stop_micros = 0;
};

struct ResultWriterSpec {
  std::string bucket, prefix;  // empty bucket: no files, the transformed results are returned
  std::string bucket_dir;
  std::string output_type = "JSON";  // JSON | JSONL
  std::string transformation;        // "" (no WriterConfig), NONE, COMPACT or FLATTEN
  std::string map_run_arn, map_run_id, state_machine_arn, execution_arn_prefix;
};

// Writes the results as ResultWriter does and returns the Map state's output: with a bucket,
// SUCCEEDED_0/FAILED_0/PENDING_0 files and manifest.json under <prefix>/<map run id>/ and
// {"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}; without, the transformed results.
Result<Json> WriteResults(const std::vector<ChildOutcome>& outcomes, const ResultWriterSpec& spec);

}  // namespace engage::flow::internal
