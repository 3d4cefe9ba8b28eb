#include "engage/core/fs.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "engage/core/clock.h"
#include "engage/core/ids.h"
#include "engage/core/sqlite.h"
#include "testing/temp_dir.h"

namespace engage::testing {
namespace {

TEST(FsTest, AtomicWriteReplacesAndLeavesNoTemporaryFiles) {
  TempDir d;
  PosixFileSystem fs;
  std::string p = d.path() + "/f.txt";
  ASSERT_OK(fs.WriteFileAtomic(p, "one"));
  ASSERT_OK(fs.WriteFileAtomic(p, "two"));
  EXPECT_EQ(*fs.ReadFile(p), "two");
  EXPECT_EQ(*fs.ListDir(d.path()), std::vector<std::string>{"f.txt"});
  EXPECT_STATUS_CODE(fs.WriteFileAtomic(d.path() + "/missing/f.txt", "x"), StatusCode::kNotFound);
  EXPECT_EQ(*fs.ListDir(d.path()), std::vector<std::string>{"f.txt"});
}

TEST(FsTest, ListAppendRemoveAndErrors) {
  TempDir d;
  PosixFileSystem fs;
  ASSERT_OK(fs.AppendFile(d.path() + "/b", "1"));
  ASSERT_OK(fs.AppendFile(d.path() + "/b", "2"));
  ASSERT_OK(fs.WriteFileAtomic(d.path() + "/a", ""));
  EXPECT_EQ(*fs.ReadFile(d.path() + "/b"), "12");
  EXPECT_EQ(*fs.ListDir(d.path()), (std::vector<std::string>{"a", "b"}));
  EXPECT_STATUS_CODE(fs.ListDir(d.path() + "/nope"), StatusCode::kNotFound);
  EXPECT_STATUS_CODE(fs.ReadFile(d.path() + "/nope"), StatusCode::kNotFound);
  EXPECT_OK(fs.RemoveAll(d.path() + "/nope"));
  ASSERT_OK(fs.RemoveAll(d.path() + "/a"));
  EXPECT_FALSE(fs.Exists(d.path() + "/a"));
}

TEST(FsTest, CleanupRunsUnlessCancelled) {
  int runs = 0;
  {
    Cleanup c([&] { ++runs; });
  }
  {
    Cleanup c([&] { ++runs; });
    c.Cancel();
  }
  EXPECT_EQ(runs, 1);
}

TEST(ClockTest, DatesRoundTrip) {
  EXPECT_EQ(FormatDate(0), "1970-01-01");
  int64_t d = 0;
  ASSERT_TRUE(ParseDate("2024-02-29", &d));
  EXPECT_EQ(FormatDate(d), "2024-02-29");
  EXPECT_FALSE(ParseDate("2024-02-30", &d));
  EXPECT_FALSE(ParseDate("2024-2-3", &d));
  EXPECT_EQ(FormatIsoUtc(1717200000LL * 1000000), "2024-06-01T00:00:00Z");
}

TEST(IdsTest, IdsAreSafeAndUniqueAndHashesKnown) {
  FakeClock clock(1717200000LL * 1000000);
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    std::string id = NewId(clock);
    EXPECT_TRUE(IsSafeId(id)) << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 100u);
  EXPECT_FALSE(IsSafeId("../x"));
  EXPECT_FALSE(IsSafeId(".hidden"));
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  TempDir d;
  EXPECT_EQ(*Sha256File(d.WriteFile("abc", "abc")), Sha256Hex("abc"));
  EXPECT_STATUS_CODE(Sha256File(d.path() + "/none"), StatusCode::kNotFound);
}

TEST(SqliteTest, TransactionsRollBackUnlessCommitted) {
  TempDir d;
  auto db = SqliteDb::Open(d.path() + "/m.db");
  ASSERT_OK(db);
  ASSERT_OK(db->Exec("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)"));
  {
    auto txn = SqliteTxn::Begin(*db);
    ASSERT_OK(txn);
    ASSERT_OK(db->Exec("INSERT INTO t VALUES ('a', 1)"));
  }  // rolled back
  {
    auto txn = SqliteTxn::Begin(*db);
    ASSERT_OK(db->Exec("INSERT INTO t VALUES ('b', 2)"));
    ASSERT_OK((*txn)->Commit());
  }
  auto st = db->Prepare("SELECT group_concat(k) FROM t");
  ASSERT_TRUE(*st->Step());
  EXPECT_EQ(st->Text(0), "b");
  EXPECT_STATUS_CODE(db->Exec("INSERT INTO t VALUES ('b', 3)"), StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace engage::testing
