// Runs every case of ../shared/conformance/asl (state machines with outcomes recorded on AWS
// Step Functions) as one parameterised test. Cases listed in asl_known_failures.txt are
// reported rather than failed; every other case must pass.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engage/flow/conformance.h"
#include "testing/temp_dir.h"

namespace engage::flow {
namespace {

namespace fs = std::filesystem;

std::string CorpusDir() {
  std::string dir = testing::SharedDir("conformance/asl");
  return dir.empty() ? std::string(ENGAGE_SOURCE_DIR) + "/../shared/conformance/asl" : dir;
}

std::vector<std::string> CaseNames() {
  std::vector<std::string> out;
  std::error_code ec;
  fs::path dir = fs::path(CorpusDir()) / "cases";
  if (!fs::is_directory(dir, ec)) return {"corpus_missing"};
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_directory()) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::map<std::string, std::string> KnownFailures() {
  std::map<std::string, std::string> out;
  std::ifstream in(std::string(ENGAGE_SOURCE_DIR) + "/tests/flow/asl_known_failures.txt");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t hash = line.find('#');
    std::string name = line.substr(0, line.find_first_of(" \t#"));
    out[name] = hash == std::string::npos ? "" : line.substr(hash + 1);
  }
  return out;
}

class AslConformanceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(AslConformanceTest, MatchesRecordedAwsOutcome) {
  if (GetParam() == "corpus_missing") GTEST_SKIP() << "no corpus at " << CorpusDir();
  AslCaseResult r = RunAslCase(CorpusDir() + "/cases/" + GetParam());
  static const std::map<std::string, std::string> known = KnownFailures();
  auto it = known.find(GetParam());
  if (it != known.end()) {
    if (r.passed) {
      std::cout << "[ NOTE ] known failure now passes; remove it from asl_known_failures.txt: "
                << GetParam() << "\n";
      return;
    }
    GTEST_SKIP() << "known failure (" << it->second << "): " << r.detail;
  }
  EXPECT_TRUE(r.passed) << r.detail;
}

// Sanitises case names into valid test names.
std::string CaseTestName(const ::testing::TestParamInfo<std::string>& info) {
  std::string s;
  for (char c : info.param) s += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return s + "_" + std::to_string(info.index);
}

INSTANTIATE_TEST_SUITE_P(Corpus, AslConformanceTest, ::testing::ValuesIn(CaseNames()),
                         CaseTestName);

TEST(AslConformanceSummaryTest, MeetsPassRateGoals) {
  auto results = RunAslCorpus(CorpusDir());
  if (!results.ok()) GTEST_SKIP() << results.status().ToString();
  Json report = AslReportToJson(*results);
  std::cout << "[ SUMMARY ] " << report["overall"].dump() << "\n";
  EXPECT_GE(report["overall"]["rate"].get<double>(), 0.98);
  for (auto it = report["categories"].begin(); it != report["categories"].end(); ++it) {
    EXPECT_GE((*it)["rate"].get<double>(), 0.90) << "category " << it.key();
  }
}

}  // namespace
}  // namespace engage::flow
