// A fresh Engage home with the default config and a fixed clock (2024-06-01T00:00:00Z).
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>

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

}  // namespace engage::testing
