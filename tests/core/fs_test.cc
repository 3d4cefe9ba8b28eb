// Tests for the filesystem, clock, id/hash and SQLite helpers of core.
#include "engage/core/fs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engage/core/clock.h"
#include "engage/core/ids.h"
#include "engage/core/sqlite.h"
#include "testing/temp_dir.h"

namespace engage::testing {
namespace {

constexpr int64_t kMicrosPerSecond = 1000000;
// 2024-03-01T12:00:00Z
constexpr int64_t kMarch1Noon = 1709294400LL * kMicrosPerSecond;

// ---------------------------------------------------------------------------------------------
// PosixFileSystem

class FsTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  TempDir dir_;
  PosixFileSystem fs_;
};

TEST_F(FsTest, WriteFileAtomicCreatesTheFile) {
  ASSERT_OK(fs_.WriteFileAtomic(Path("f.txt"), "hello"));
  auto got = fs_.ReadFile(Path("f.txt"));
  ASSERT_OK(got);
  EXPECT_EQ(*got, "hello");
}

TEST_F(FsTest, WriteFileAtomicReplacesTheContent) {
  ASSERT_OK(fs_.WriteFileAtomic(Path("f.txt"), "a longer first version"));
  ASSERT_OK(fs_.WriteFileAtomic(Path("f.txt"), "two"));
  EXPECT_EQ(*fs_.ReadFile(Path("f.txt")), "two");
}

TEST_F(FsTest, WriteFileAtomicLeavesNoTemporaryFiles) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK(fs_.WriteFileAtomic(Path("f.txt"), std::string(i * 100, 'x')));
  }
  EXPECT_EQ(*fs_.ListDir(dir_.path()), std::vector<std::string>{"f.txt"});
}

TEST_F(FsTest, WriteFileAtomicInAMissingDirectoryIsNotFound) {
  Status s = fs_.WriteFileAtomic(Path("missing/f.txt"), "x");
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  EXPECT_NE(s.message().find(Path("missing/f.txt")), std::string::npos) << s.message();
  EXPECT_EQ(*fs_.ListDir(dir_.path()), std::vector<std::string>{});
}

TEST_F(FsTest, WriteFileAtomicKeepsBinaryAndLargeData) {
  std::string data;
  for (int i = 0; i < 3 * 1000 * 1000; ++i) data.push_back(static_cast<char>(i * 7 % 256));
  ASSERT_OK(fs_.WriteFileAtomic(Path("blob"), data));
  auto got = fs_.ReadFile(Path("blob"));
  ASSERT_OK(got);
  EXPECT_EQ(got->size(), data.size());
  EXPECT_TRUE(*got == data);
  EXPECT_EQ(*fs_.FileSize(Path("blob")), static_cast<int64_t>(data.size()));
}

TEST_F(FsTest, WriteFileAtomicOfEmptyDataCreatesAnEmptyFile) {
  ASSERT_OK(fs_.WriteFileAtomic(Path("empty"), ""));
  EXPECT_TRUE(fs_.Exists(Path("empty")));
  EXPECT_EQ(*fs_.ReadFile(Path("empty")), "");
}

TEST_F(FsTest, ReadFileOfAMissingFileIsNotFoundNamingIt) {
  auto r = fs_.ReadFile(Path("nope"));
  EXPECT_STATUS_CODE(r, StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find(Path("nope")), std::string::npos);
}

TEST_F(FsTest, AppendFileCreatesAndAppends) {
  ASSERT_OK(fs_.AppendFile(Path("log"), "1\n"));
  ASSERT_OK(fs_.AppendFile(Path("log"), "2\n"));
  ASSERT_OK(fs_.AppendFile(Path("log"), ""));
  ASSERT_OK(fs_.AppendFile(Path("log"), "3\n"));
  EXPECT_EQ(*fs_.ReadFile(Path("log")), "1\n2\n3\n");
}

TEST_F(FsTest, AppendFileAfterAtomicWriteKeepsTheWrittenContent) {
  ASSERT_OK(fs_.WriteFileAtomic(Path("f"), "head"));
  ASSERT_OK(fs_.AppendFile(Path("f"), "+tail"));
  EXPECT_EQ(*fs_.ReadFile(Path("f")), "head+tail");
}

TEST_F(FsTest, AppendFileInAMissingDirectoryIsNotFound) {
  EXPECT_STATUS_CODE(fs_.AppendFile(Path("missing/log"), "x"), StatusCode::kNotFound);
}

TEST_F(FsTest, ListDirReturnsSortedNames) {
  for (const char* name : {"c", "a", "b10", "b2", "B"}) ASSERT_OK(fs_.AppendFile(Path(name), "x"));
  ASSERT_OK(fs_.CreateDirs(Path("sub/inner")));
  EXPECT_EQ(*fs_.ListDir(dir_.path()),
            (std::vector<std::string>{"B", "a", "b10", "b2", "c", "sub"}));
}

TEST_F(FsTest, ListDirOfAnEmptyDirectoryIsEmpty) {
  auto r = fs_.ListDir(dir_.path());
  ASSERT_OK(r);
  EXPECT_TRUE(r->empty());
}

TEST_F(FsTest, ListDirOfAMissingDirectoryIsNotFound) {
  auto r = fs_.ListDir(Path("nope"));
  EXPECT_STATUS_CODE(r, StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find(Path("nope")), std::string::npos);
}

TEST_F(FsTest, CreateDirsCreatesNestedDirectoriesAndIsIdempotent) {
  ASSERT_OK(fs_.CreateDirs(Path("a/b/c")));
  EXPECT_TRUE(std::filesystem::is_directory(Path("a/b/c")));
  EXPECT_OK(fs_.CreateDirs(Path("a/b/c")));
}

TEST_F(FsTest, RenameMovesAFile) {
  ASSERT_OK(fs_.WriteFileAtomic(Path("from"), "data"));
  ASSERT_OK(fs_.Rename(Path("from"), Path("to")));
  EXPECT_FALSE(fs_.Exists(Path("from")));
  EXPECT_EQ(*fs_.ReadFile(Path("to")), "data");
}

TEST_F(FsTest, RenameReplacesTheTarget) {
  ASSERT_OK(fs_.WriteFileAtomic(Path("from"), "new"));
  ASSERT_OK(fs_.WriteFileAtomic(Path("to"), "old"));
  ASSERT_OK(fs_.Rename(Path("from"), Path("to")));
  EXPECT_EQ(*fs_.ReadFile(Path("to")), "new");
  EXPECT_EQ(*fs_.ListDir(dir_.path()), std::vector<std::string>{"to"});
}

TEST_F(FsTest, RenameOfAMissingFileIsNotFound) {
  EXPECT_STATUS_CODE(fs_.Rename(Path("nope"), Path("to")), StatusCode::kNotFound);
  EXPECT_FALSE(fs_.Exists(Path("to")));
}

TEST_F(FsTest, RemoveAllOfAMissingPathIsOk) {
  EXPECT_OK(fs_.RemoveAll(Path("nope")));
  EXPECT_OK(fs_.RemoveAll(Path("nope/deeper")));
}

TEST_F(FsTest, RemoveAllRemovesAFile) {
  ASSERT_OK(fs_.WriteFileAtomic(Path("f"), "x"));
  ASSERT_OK(fs_.RemoveAll(Path("f")));
  EXPECT_FALSE(fs_.Exists(Path("f")));
}

TEST_F(FsTest, RemoveAllRemovesADirectoryTree) {
  ASSERT_OK(fs_.CreateDirs(Path("t/a/b")));
  ASSERT_OK(fs_.WriteFileAtomic(Path("t/a/b/f"), "x"));
  ASSERT_OK(fs_.WriteFileAtomic(Path("t/g"), "y"));
  ASSERT_OK(fs_.RemoveAll(Path("t")));
  EXPECT_FALSE(fs_.Exists(Path("t")));
  EXPECT_TRUE(fs_.Exists(dir_.path()));
}

TEST_F(FsTest, FileSizeCountsBytes) {
  ASSERT_OK(fs_.WriteFileAtomic(Path("f"), "12345"));
  auto n = fs_.FileSize(Path("f"));
  ASSERT_OK(n);
  EXPECT_EQ(*n, 5);
}

TEST_F(FsTest, FileSizeOfAMissingFileIsNotFound) {
  EXPECT_STATUS_CODE(fs_.FileSize(Path("nope")), StatusCode::kNotFound);
}

TEST_F(FsTest, ExistsSeesFilesAndDirectories) {
  EXPECT_TRUE(fs_.Exists(dir_.path()));
  EXPECT_FALSE(fs_.Exists(Path("f")));
  ASSERT_OK(fs_.WriteFileAtomic(Path("f"), ""));
  EXPECT_TRUE(fs_.Exists(Path("f")));
}

TEST_F(FsTest, SyncDirOfAMissingDirectoryIsNotFound) {
  EXPECT_OK(fs_.SyncDir(dir_.path()));
  EXPECT_STATUS_CODE(fs_.SyncDir(Path("nope")), StatusCode::kNotFound);
}

TEST(FileSystemTest, DefaultIsOneSharedInstance) {
  auto a = PosixFileSystem::Default();
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a, PosixFileSystem::Default());
}

TEST(JoinPathTest, JoinsWithOneSlash) {
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "b"), "a/b");
  EXPECT_EQ(JoinPath("/x/y", "z.txt"), "/x/y/z.txt");
  EXPECT_EQ(JoinPath("", "b"), "b");
}

// ---------------------------------------------------------------------------------------------
// Cleanup

TEST(CleanupTest, RunsOnScopeExit) {
  int runs = 0;
  {
    Cleanup c([&] { ++runs; });
    EXPECT_EQ(runs, 0);
  }
  EXPECT_EQ(runs, 1);
}

TEST(CleanupTest, DoesNotRunWhenCancelled) {
  int runs = 0;
  {
    Cleanup c([&] { ++runs; });
    c.Cancel();
  }
  EXPECT_EQ(runs, 0);
}

TEST(CleanupTest, RunsOnEarlyReturn) {
  int runs = 0;
  auto f = [&](bool fail) -> Status {
    Cleanup c([&] { ++runs; });
    if (fail) return InternalError("x");
    c.Cancel();
    return Status::Ok();
  };
  EXPECT_OK(f(false));
  EXPECT_EQ(runs, 0);
  EXPECT_STATUS_CODE(f(true), StatusCode::kInternal);
  EXPECT_EQ(runs, 1);
}

// ---------------------------------------------------------------------------------------------
// Clock and dates

TEST(ClockTest, FormatDateOfDayZeroIsTheEpoch) { EXPECT_EQ(FormatDate(0), "1970-01-01"); }

TEST(ClockTest, FormatDateHandlesLeapDaysAndNegativeDays) {
  EXPECT_EQ(FormatDate(-1), "1969-12-31");
  EXPECT_EQ(FormatDate(19782), "2024-02-29");
  EXPECT_EQ(FormatDate(19783), "2024-03-01");
  EXPECT_EQ(FormatDate(10956), "1999-12-31");
}

TEST(ClockTest, ParseDateReturnsDaysSinceEpoch) {
  int64_t d = -1;
  ASSERT_TRUE(ParseDate("1970-01-01", &d));
  EXPECT_EQ(d, 0);
  ASSERT_TRUE(ParseDate("2024-03-01", &d));
  EXPECT_EQ(d, 19783);
  ASSERT_TRUE(ParseDate("1969-12-31", &d));
  EXPECT_EQ(d, -1);
}

TEST(ClockTest, DatesRoundTrip) {
  for (int64_t day = -800; day < 40000; day += 13) {
    int64_t back = 0;
    std::string s = FormatDate(day);
    ASSERT_TRUE(ParseDate(s, &back)) << s;
    EXPECT_EQ(back, day) << s;
  }
  int64_t d = 0;
  ASSERT_TRUE(ParseDate("2024-02-29", &d));
  EXPECT_EQ(FormatDate(d), "2024-02-29");
}

TEST(ClockTest, ParseDateRejectsImpossibleDates) {
  int64_t d = 0;
  for (const char* s : {"2024-02-30", "2023-02-29", "2024-13-01", "2024-00-10", "2024-04-31",
                        "2024-01-00", "1900-02-29"}) {
    EXPECT_FALSE(ParseDate(s, &d)) << s;
  }
}

TEST(ClockTest, ParseDateRejectsMalformedText) {
  int64_t d = 0;
  for (const char* s : {"", "2024-2-3", "2024/02/03", "20240203", "2024-02-03T00:00", "2024-02-03 ",
                        "abcd-ef-gh", "2024-02-3x", "24-02-03"}) {
    EXPECT_FALSE(ParseDate(s, &d)) << "'" << s << "'";
  }
}

// ParseDate uses sscanf("%4d-%2u-%2u"), which skips leading blanks and accepts signs inside
// the fields, so these 10-character strings are accepted although they are not YYYY-MM-DD.
// Enable when src/core/clock.cc ParseDate checks the digits itself.
TEST(ClockTest, ParseDateRejectsBlanksAndSignsInsideFields) {
  int64_t d = 0;
  for (const char* s :
       {" 2024-1-01", "2024- 1-01", "2024-01- 1", "+024-01-01", "2024-+1-01", "-001-01-01"}) {
    EXPECT_FALSE(ParseDate(s, &d)) << "'" << s << "'";
  }
}

TEST(ClockTest, FormatIsoUtcFormatsSecondsInUtc) {
  EXPECT_EQ(FormatIsoUtc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatIsoUtc(1717200000LL * kMicrosPerSecond), "2024-06-01T00:00:00Z");
  EXPECT_EQ(FormatIsoUtc(kMarch1Noon), "2024-03-01T12:00:00Z");
  EXPECT_EQ(FormatIsoUtc(kMarch1Noon + (3 * 3600 + 4 * 60 + 5) * kMicrosPerSecond),
            "2024-03-01T15:04:05Z");
}

TEST(ClockTest, FormatIsoUtcTruncatesSubSeconds) {
  EXPECT_EQ(FormatIsoUtc(kMarch1Noon + 999999), "2024-03-01T12:00:00Z");
}

TEST(ClockTest, FormatIsoUtcHandlesTimesBeforeTheEpoch) {
  EXPECT_EQ(FormatIsoUtc(-1), "1969-12-31T23:59:59Z");
  EXPECT_EQ(FormatIsoUtc(-kMicrosPerSecond), "1969-12-31T23:59:59Z");
  EXPECT_EQ(FormatIsoUtc(-86400 * kMicrosPerSecond), "1969-12-31T00:00:00Z");
}

TEST(ClockTest, FakeClockIsSetAndAdvanced) {
  FakeClock clock(kMarch1Noon);
  EXPECT_EQ(clock.NowMicros(), kMarch1Noon);
  clock.AdvanceMicros(5);
  EXPECT_EQ(clock.NowMicros(), kMarch1Noon + 5);
  EXPECT_EQ(clock.MonotonicMicros(), kMarch1Noon + 5);
  clock.SetMicros(7);
  EXPECT_EQ(clock.NowMicros(), 7);
}

TEST(ClockTest, SystemClockIsCurrentAndMonotonic) {
  const SystemClock& clock = SystemClock::Default();
  EXPECT_GT(clock.NowMicros(), kMarch1Noon);  // after this test was written
  int64_t a = clock.MonotonicMicros();
  int64_t b = clock.MonotonicMicros();
  EXPECT_LE(a, b);
}

// ---------------------------------------------------------------------------------------------
// Ids and hashes

TEST(IdsTest, NewIdStartsWithTheClockTime) {
  FakeClock clock(kMarch1Noon);
  std::string id = NewId(clock);
  ASSERT_EQ(id.size(), 24u) << id;
  EXPECT_EQ(id.substr(0, 16), "20240301T120000-");
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef", 16), std::string::npos) << id;
}

TEST(IdsTest, NewIdIsSafe) {
  FakeClock clock(kMarch1Noon);
  std::string id = NewId(clock);
  EXPECT_TRUE(IsSafeId(id)) << id;
}

TEST(IdsTest, NewIdIsUniqueAcrossCallsAtTheSameTime) {
  FakeClock clock(kMarch1Noon);
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(NewId(clock));
  EXPECT_EQ(ids.size(), 1000u);
}

TEST(IdsTest, NewIdsSortByTime) {
  FakeClock clock(kMarch1Noon);
  std::string earlier = NewId(clock);
  clock.AdvanceMicros(kMicrosPerSecond);
  std::string later = NewId(clock);
  EXPECT_LT(earlier, later);
}

TEST(IdsTest, IsSafeIdAcceptsFileNameCharacters) {
  for (const char* id : {"a", "20240301T120000-9f3ab2c1", "A.b-c_D9", "x.."}) {
    EXPECT_TRUE(IsSafeId(id)) << id;
  }
  EXPECT_TRUE(IsSafeId(std::string(64, 'z')));
}

TEST(IdsTest, IsSafeIdRejectsPathsAndOddCharacters) {
  for (const char* id : {"", ".hidden", "..", "../x", "a/b", "a\\b", "a b", "a:b", "\xc3\xa9"}) {
    EXPECT_FALSE(IsSafeId(id)) << id;
  }
  EXPECT_FALSE(IsSafeId(std::string(65, 'z')));
  EXPECT_FALSE(IsSafeId(std::string("a\0b", 3)));
}

TEST(IdsTest, Sha256HexMatchesKnownVectors) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(IdsTest, Sha256FileMatchesSha256HexOfItsBytes) {
  TempDir d;
  EXPECT_EQ(*Sha256File(d.WriteFile("abc", "abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // Larger than the 1 MiB read buffer, so the digest spans several reads.
  std::string big(3 * 1024 * 1024 + 17, 'q');
  EXPECT_EQ(*Sha256File(d.WriteFile("big", big)), Sha256Hex(big));
  EXPECT_EQ(*Sha256File(d.WriteFile("empty", "")), Sha256Hex(""));
}

TEST(IdsTest, Sha256FileOfAMissingFileIsNotFoundNamingIt) {
  TempDir d;
  auto r = Sha256File(d.path() + "/none");
  EXPECT_STATUS_CODE(r, StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find(d.path() + "/none"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// SQLite

class SqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = SqliteDb::Open(dir_.path() + "/meta.db");
    ASSERT_OK(db);
    db_.emplace(std::move(*db));
    ASSERT_OK(db_->Exec("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER, x REAL)"));
  }

  // Keys of `t` in order, joined with ','.
  std::string Keys() {
    auto st = db_->Prepare(
        "SELECT coalesce(group_concat(k, ','), '') FROM (SELECT k FROM t "
        "ORDER BY k)");
    EXPECT_OK(st);
    if (!st.ok()) return "<error>";
    auto row = st->Step();
    EXPECT_TRUE(row.ok() && *row);
    return st->Text(0);
  }

  TempDir dir_;
  std::optional<SqliteDb> db_;
};

TEST_F(SqliteTest, OpenCreatesTheDatabaseFile) {
  EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/meta.db"));
  EXPECT_EQ(db_->path(), dir_.path() + "/meta.db");
}

TEST_F(SqliteTest, OpenTurnsOnWalAndForeignKeys) {
  auto mode = db_->Prepare("PRAGMA journal_mode");
  ASSERT_OK(mode);
  ASSERT_TRUE(*mode->Step());
  EXPECT_EQ(mode->Text(0), "wal");
  auto fk = db_->Prepare("PRAGMA foreign_keys");
  ASSERT_OK(fk);
  ASSERT_TRUE(*fk->Step());
  EXPECT_EQ(fk->Int(0), 1);
}

TEST_F(SqliteTest, ExecRunsStatements) {
  ASSERT_OK(
      db_->Exec("INSERT INTO t (k, v) VALUES ('a', 1); INSERT INTO t (k, v) VALUES ('b', 2)"));
  EXPECT_EQ(Keys(), "a,b");
}

TEST_F(SqliteTest, ExecOfBadSqlFailsNamingTheDatabase) {
  Status s = db_->Exec("SELEKT 1");
  EXPECT_EQ(s.code(), StatusCode::kInternal) << s.ToString();
  EXPECT_NE(s.message().find("meta.db"), std::string::npos) << s.message();
}

TEST_F(SqliteTest, PrepareOfBadSqlFails) {
  auto st = db_->Prepare("SELECT * FROM no_such_table");
  EXPECT_STATUS_CODE(st, StatusCode::kInternal);
  EXPECT_NE(st.status().message().find("no_such_table"), std::string::npos)
      << st.status().message();
}

TEST_F(SqliteTest, PreparedInsertAndSelectRoundTripValues) {
  auto ins = db_->Prepare("INSERT INTO t (k, v, x) VALUES (?, ?, ?)");
  ASSERT_OK(ins);
  ins->Bind(1, std::string("a")).Bind(2, int64_t{1} << 40).Bind(3, 2.5);
  ASSERT_OK(ins->Run());
  EXPECT_EQ(db_->Changes(), 1);
  EXPECT_EQ(db_->LastInsertRowid(), 1);
  ins->Reset();
  ins->Bind(1, std::string("b\0c", 3)).BindNull(2).BindNull(3);
  ASSERT_OK(ins->Run());
  EXPECT_EQ(db_->LastInsertRowid(), 2);

  auto sel = db_->Prepare("SELECT k, v, x FROM t WHERE k >= ? ORDER BY k");
  ASSERT_OK(sel);
  sel->Bind(1, std::string("a"));
  ASSERT_TRUE(*sel->Step());
  EXPECT_EQ(sel->Text(0), "a");
  EXPECT_EQ(sel->Int(1), int64_t{1} << 40);
  EXPECT_EQ(sel->Double(2), 2.5);
  EXPECT_FALSE(sel->IsNull(1));
  ASSERT_TRUE(*sel->Step());
  EXPECT_EQ(sel->Text(0), std::string("b\0c", 3));  // length-aware, keeps embedded NULs
  EXPECT_TRUE(sel->IsNull(1));
  EXPECT_TRUE(sel->IsNull(2));
  EXPECT_EQ(sel->Text(1), "");
  EXPECT_FALSE(*sel->Step());
}

TEST_F(SqliteTest, ResetClearsBindingsForReuse) {
  auto ins = db_->Prepare("INSERT INTO t (k, v) VALUES (?, ?)");
  ASSERT_OK(ins);
  ins->Bind(1, std::string("a")).Bind(2, int64_t{5});
  ASSERT_OK(ins->Run());
  ins->Reset();
  ins->Bind(1, std::string("b"));  // v left unbound -> NULL
  ASSERT_OK(ins->Run());
  auto sel = db_->Prepare("SELECT v FROM t WHERE k = 'b'");
  ASSERT_OK(sel);
  ASSERT_TRUE(*sel->Step());
  EXPECT_TRUE(sel->IsNull(0));
}

TEST_F(SqliteTest, TransactionCommitPersists) {
  {
    auto txn = SqliteTxn::Begin(*db_);
    ASSERT_OK(txn);
    ASSERT_OK(db_->Exec("INSERT INTO t (k) VALUES ('b')"));
    ASSERT_OK((*txn)->Commit());
  }
  EXPECT_EQ(Keys(), "b");
}

TEST_F(SqliteTest, TransactionIsRolledBackWhenNotCommitted) {
  {
    auto txn = SqliteTxn::Begin(*db_);
    ASSERT_OK(txn);
    ASSERT_OK(db_->Exec("INSERT INTO t (k) VALUES ('a')"));
    EXPECT_EQ(Keys(), "a");  // visible inside the transaction
  }
  EXPECT_EQ(Keys(), "");
}

TEST_F(SqliteTest, TransactionRollsBackAfterAFailedStatement) {
  ASSERT_OK(db_->Exec("INSERT INTO t (k) VALUES ('a')"));
  {
    auto txn = SqliteTxn::Begin(*db_);
    ASSERT_OK(txn);
    ASSERT_OK(db_->Exec("INSERT INTO t (k) VALUES ('b')"));
    EXPECT_STATUS_CODE(db_->Exec("INSERT INTO t (k) VALUES ('a')"), StatusCode::kAlreadyExists);
  }
  EXPECT_EQ(Keys(), "a");
  // The connection is usable again: a new transaction can begin.
  auto txn = SqliteTxn::Begin(*db_);
  ASSERT_OK(txn);
  ASSERT_OK((*txn)->Commit());
}

TEST_F(SqliteTest, NestedBeginFails) {
  auto txn = SqliteTxn::Begin(*db_);
  ASSERT_OK(txn);
  auto nested = SqliteTxn::Begin(*db_);
  EXPECT_FALSE(nested.ok());
}

TEST_F(SqliteTest, UniqueViolationIsAlreadyExists) {
  ASSERT_OK(db_->Exec("INSERT INTO t (k) VALUES ('a')"));
  Status s = db_->Exec("INSERT INTO t (k) VALUES ('a')");
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << s.ToString();
  EXPECT_NE(s.message().find("UNIQUE"), std::string::npos) << s.message();
}

TEST_F(SqliteTest, UniqueViolationInAPreparedStatementIsAlreadyExists) {
  ASSERT_OK(db_->Exec("INSERT INTO t (k) VALUES ('a')"));
  auto ins = db_->Prepare("INSERT INTO t (k) VALUES (?)");
  ASSERT_OK(ins);
  ins->Bind(1, std::string("a"));
  EXPECT_STATUS_CODE(ins->Run(), StatusCode::kAlreadyExists);
}

TEST_F(SqliteTest, DataSurvivesReopening) {
  ASSERT_OK(db_->Exec("INSERT INTO t (k) VALUES ('kept')"));
  db_.reset();
  auto again = SqliteDb::Open(dir_.path() + "/meta.db");
  ASSERT_OK(again);
  db_.emplace(std::move(*again));
  EXPECT_EQ(Keys(), "kept");
}

TEST_F(SqliteTest, MovedDatabaseStaysOpen) {
  SqliteDb moved = std::move(*db_);
  db_.reset();  // destroying the moved-from owner must not close the handle
  ASSERT_OK(moved.Exec("INSERT INTO t (k) VALUES ('m')"));
  EXPECT_EQ(moved.path(), dir_.path() + "/meta.db");
  SqliteDb assigned = std::move(moved);
  EXPECT_OK(assigned.Exec("INSERT INTO t (k) VALUES ('n')"));
}

TEST_F(SqliteTest, MovedStatementStaysUsable) {
  auto st = db_->Prepare("SELECT 42");
  ASSERT_OK(st);
  SqliteStmt moved = std::move(*st);
  ASSERT_TRUE(*moved.Step());
  EXPECT_EQ(moved.Int(0), 42);
  SqliteStmt assigned;
  assigned = std::move(moved);
  assigned.Reset();
  ASSERT_TRUE(*assigned.Step());
  EXPECT_EQ(assigned.Int(0), 42);
}

TEST(ReadTextArgumentTest, ReadsAFileWholeAndRefusesOneLargerThanTheBound) {
  TempDir dir;
  std::string path = dir.WriteFile("a.sql", "SELECT 1");
  auto text = ReadTextArgument(path, "SQL file");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text, "SELECT 1");
  auto capped = ReadTextArgument(path, "SQL file", 4);
  ASSERT_FALSE(capped.ok());
  EXPECT_EQ(capped.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(capped.status().message().find("larger than 4 bytes"), std::string::npos);
  // An endless source stops at the bound instead of exhausting memory.
  auto zero = ReadTextArgument("/dev/zero", "SQL file", 1 << 20);
  EXPECT_EQ(zero.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadTextArgument(dir.path(), "SQL file").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadTextArgument(dir.path() + "/none.sql", "SQL file").status().code(),
            StatusCode::kNotFound);
}

// --out and --save: a symlink is written through, a FIFO is written to (not replaced by a file),
// a directory or a missing directory is refused before any work.
TEST(WriteOutputFileTest, FollowsSymlinksWritesToFifosAndRefusesDirectories) {
  TempDir dir;
  std::string target = dir.WriteFile("target.csv", "old");
  std::string link = dir.path() + "/link.csv";
  std::filesystem::create_symlink(target, link);
  ASSERT_TRUE(WriteOutputFile(link, "new").ok());
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  EXPECT_EQ(*PosixFileSystem().ReadFile(target), "new");

  std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string received;
  std::thread reader([&] { received = *PosixFileSystem().ReadFile(fifo); });
  ASSERT_TRUE(WriteOutputFile(fifo, "through the pipe").ok());
  reader.join();
  EXPECT_EQ(received, "through the pipe");
  EXPECT_TRUE(std::filesystem::is_fifo(fifo));

  Status d = CheckOutputPath(dir.path());
  EXPECT_EQ(d.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(d.message().find("is a directory"), std::string::npos) << d.message();
  EXPECT_EQ(CheckOutputPath(dir.path() + "/none/x.csv").code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckOutputPath("").ok());
  ASSERT_TRUE(WriteOutputFile(dir.path() + "/fresh.csv", "x").ok());
  EXPECT_EQ(*PosixFileSystem().ReadFile(dir.path() + "/fresh.csv"), "x");
}

}  // namespace
}  // namespace engage::testing
