// A fresh Engage home with the default config and a fixed clock (2024-06-01T00:00:00Z).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "engage/core/clock.h"
#include "engage/core/fs.h"
#include "engage/lake/duck.h"
#include "engage/lake/ingest.h"
#include "engage/lake/lake.h"
#include "testing/temp_dir.h"

namespace engage::testing {

// 2024-06-01T00:00:00Z
constexpr int64_t kTestNowMicros = 1717200000LL * 1000000;

class LakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_.root = dir_.path() + "/home";
    ASSERT_OK(lake::Lake::Init(home_, false));
  }

  // Appends TOML to engage.toml (e.g. extra tables) before the lake is opened.
  void AppendConfig(const std::string& toml) {
    std::ofstream out(home_.config(), std::ios::app);
    out << "\n" << toml << "\n";
  }

  std::unique_ptr<lake::Lake> Open(bool writer = true) {
    lake::LakeOptions opts;
    opts.writer = writer;
    opts.clock = &clock_;
    auto l = lake::Lake::Open(home_, opts);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    return l.ok() ? std::move(*l) : nullptr;
  }

  Result<lake::IngestReport> IngestFiles(const std::string& table, std::vector<std::string> files,
                                         const std::string& id = "") {
    auto l = Open();
    lake::IngestRequest req;
    req.table = table;
    req.inputs = std::move(files);
    req.ingest_id = id;
    return lake::Ingest(*l, req);
  }

  // Runs a query over files with a throwaway DuckDB; returns the first cell as text.
  std::string Scalar(const std::string& sql) {
    auto db = lake::DuckDb::Open({});
    auto conn = db->Connect();
    auto r = conn->Query(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || r->RowCount() == 0) return "";
    return r->Str(0, 0).value_or("NULL");
  }

  std::string LakeGlob(const std::string& table) {
    return home_.lake() + "/" + table + "/*/*.parquet";
  }

  TempDir dir_;
  HomePaths home_;
  FakeClock clock_{kTestNowMicros};
};

inline std::string EventsHeader() {
  return "event_id,customer_id,event_time,event_type,channel,amount,properties\n";
}

// Writes an events source (CSV, or JSONL when `jsonl`) to `path`: for each size in `sizes`, a
// good row and then a row whose properties value is that many bytes, streamed (the file is
// never in memory whole), with event ids from `first_id`. Returns the number of data records.
inline int64_t WriteEventsWithValuesOfSizes(const std::string& path, bool jsonl,
                                            const std::vector<int64_t>& sizes,
                                            int64_t first_id = 1) {
  std::ofstream out(path, std::ios::binary);
  if (!jsonl) out << EventsHeader();
  std::string chunk(1 << 20, 'v');
  int64_t records = 0;
  int64_t id = first_id - 1;
  auto row = [&](int64_t value_bytes) {
    ++id;
    ++records;
    if (jsonl) {
      out << "{\"event_id\":" << id
          << ",\"customer_id\":10,\"event_time\":\"2024-05-01T10:00:00Z\",\"event_type\":"
             "\"session\",\"channel\":\"web\",\"properties\":\"";
    } else {
      out << id << ",10,2024-05-01 10:00:00,session,web,,";
    }
    for (int64_t left = value_bytes; left > 0;) {
      int64_t n = std::min<int64_t>(left, static_cast<int64_t>(chunk.size()));
      out.write(chunk.data(), n);
      left -= n;
    }
    out << (jsonl ? "\"}\n" : "\n");
  };
  for (int64_t s : sizes) {
    row(1);
    row(s);
  }
  row(1);
  return records;
}

}  // namespace engage::testing
