// Ingest: validated, idempotent, atomic loading of CSV (plain or gzip), JSONL and Parquet files
// into a table's date-partitioned Parquet files.
//
// What happens, in order:
//  1. inputs (files or globs) are resolved and hashed (SHA-256); files whose content was
//     already ingested into the table are skipped, so re-ingesting is a no-op;
//  2. each file is read with all values as text (Parquet keeps its types), source columns are
//     mapped onto the table's columns, and every row is checked against the table's schema:
//     types, required fields, ranges, allowed values, lengths, timestamp bounds and the optional
//     primary key (within the batch and against the lake);
//  3. rows that fail go to lake/_quarantine/<table>/<ingest-id>.jsonl with the source file,
//     line (text formats) or row number, the reason and the raw record; rows that are not even
//     parseable (wrong column count, invalid UTF-8, an over-long line) are quarantined too;
//  4. good rows are written as zstd Parquet under lake/_staging/<ingest-id>/, moved to
//     lake/<table>/dt=YYYY-MM-DD/part-<ingest-id>-<n>.parquet, and published by one SQLite
//     transaction that also records the manifest entry.
// A file that cannot be read at all (missing, empty, not the format it claims, missing a
// required column) fails the whole ingest with kInvalidArgument/kNotFound naming it, and
// nothing is written. A process killed at any point leaves nothing visible; the next writer's
// recovery removes the leftovers.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engage/core/json.h"
#include "engage/lake/catalog.h"
#include "engage/lake/lake.h"

namespace engage::lake {

enum class SourceFormat { kAuto, kCsv, kJsonl, kParquet };

Result<SourceFormat> ParseSourceFormat(const std::string& s);  // auto|csv|jsonl|parquet

struct IngestRequest {
  std::string table;
  std::vector<std::string> inputs;  // files or glob patterns
  std::string ingest_id;            // optional; generated when empty
  SourceFormat format = SourceFormat::kAuto;
};

struct SkippedSource {
  std::string path;
  std::string previous_ingest_id;
};

struct IngestReport {
  IngestRecord record;
  bool no_op = false;  // nothing new: every source was ingested before
  std::vector<SkippedSource> skipped;
  std::string quarantine_file;  // absolute path, empty if no row was rejected

  Json ToJson() const;
  std::string ToText() const;  // what was read, accepted, rejected and written; what was skipped
};

// Runs one ingest on a lake opened as writer. `stage` (optional) is told what is happening.
// Errors: kNotFound (unknown table, missing input), kInvalidArgument (unreadable input, bad id),
// kAlreadyExists (the id was used for different content), I/O errors.
Result<IngestReport> Ingest(Lake& lake, const IngestRequest& req,
                            const std::function<void(const std::string&)>& stage = nullptr);

}  // namespace engage::lake
