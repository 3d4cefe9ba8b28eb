// Ingest cases too slow for `ctest -L fast` (label "slow"): hundreds of MB of input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "engage/core/json.h"
#include "lake/lake_fixture.h"

namespace engage::testing {
namespace {

// F10 at every size: lines of 1 KB to 80 MB (beyond DuckDB's 32 MiB read buffer), CSV and
// JSONL: read = accepted + rejected = the records in the file, and each rejected one is
// quarantined with its line.
TEST_F(LakeTest, EveryRecordIsAccountedForAtEveryLineSize) {
  const std::vector<int64_t> sizes = {1024, 1 << 20, 10 << 20, 20 << 20, 40 << 20, 80 << 20};
  int64_t accepted = 0;
  for (bool jsonl : {false, true}) {
    SCOPED_TRACE(jsonl ? "jsonl" : "csv");
    std::string path = dir_.path() + (jsonl ? "/sizes.jsonl" : "/sizes.csv");
    int64_t records = WriteEventsWithValuesOfSizes(path, jsonl, sizes, jsonl ? 1000 : 1);
    auto r = IngestFiles("events", {path});
    ASSERT_OK(r);
    EXPECT_EQ(r->record.rows_read, records);
    EXPECT_EQ(r->record.rows_read, r->record.rows_accepted + r->record.rows_rejected);
    // The good rows and the 1 KB value; the others exceed max_length or max_line_bytes.
    EXPECT_EQ(r->record.rows_accepted, static_cast<int64_t>(sizes.size()) + 2);
    std::ifstream in(r->quarantine_file);
    std::set<int64_t> lines;
    std::string line;
    while (std::getline(in, line)) lines.insert(Json::parse(line)["line"].get<int64_t>());
    EXPECT_EQ(static_cast<int64_t>(lines.size()), r->record.rows_rejected);
    for (size_t i = 1; i < sizes.size(); ++i) {
      EXPECT_TRUE(lines.count(static_cast<int64_t>(2 * i + 2) + (jsonl ? 0 : 1))) << sizes[i];
    }
    accepted += r->record.rows_accepted;
    std::filesystem::remove(path);
  }
  EXPECT_EQ(Scalar("SELECT count(*) FROM '" + LakeGlob("events") + "'"), std::to_string(accepted));
}

}  // namespace
}  // namespace engage::testing
