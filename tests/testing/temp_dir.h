// Test fixtures: a fresh temporary directory (and Engage home) per test, removed afterwards.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "engage/core/home.h"
#include "engage/core/status.h"

namespace engage::testing {

// Creates a unique directory under the test temp dir; removes it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes `content` to path()/name and returns the full path.
  std::string WriteFile(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

// Matches a Status or Result with the given code; prints the message on failure.
#define EXPECT_STATUS_CODE(expr, code_)                              \
  do {                                                               \
    ::engage::Status engage_s_ = ::engage::internal::AsStatus(expr); \
    EXPECT_EQ(engage_s_.code(), (code_)) << engage_s_.ToString();    \
  } while (0)

#define ASSERT_OK(expr)                                              \
  do {                                                               \
    ::engage::Status engage_s_ = ::engage::internal::AsStatus(expr); \
    ASSERT_TRUE(engage_s_.ok()) << engage_s_.ToString();             \
  } while (0)

// Declares or assigns `lhs` from a Result, failing the test (and returning) on an error.
#define ENGAGE_TEST_CONCAT_(a, b) a##b
#define ENGAGE_TEST_CONCAT(a, b) ENGAGE_TEST_CONCAT_(a, b)
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(ENGAGE_TEST_CONCAT(engage_r_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(r, lhs, expr) \
  auto r = (expr);                               \
  ASSERT_TRUE(r.ok()) << r.status().ToString();  \
  lhs = std::move(r).value()

#define EXPECT_OK(expr)                                              \
  do {                                                               \
    ::engage::Status engage_s_ = ::engage::internal::AsStatus(expr); \
    EXPECT_TRUE(engage_s_.ok()) << engage_s_.ToString();             \
  } while (0)

// Path of the shared data sets (../shared/data relative to the repo), or "" if absent.
std::string SharedDataDir();
// ../shared/<sub> relative to the repo (or /work/shared/<sub>), or "" if absent.
std::string SharedDir(const std::string& sub);

}  // namespace engage::testing
