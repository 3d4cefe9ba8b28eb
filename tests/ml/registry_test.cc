#include "engage/ml/registry.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "testing/temp_dir.h"

namespace engage::ml {
namespace {

Json CardWithAuc(double auc, std::vector<std::string> features = {"a", "b"}) {
  return Json{{"params", {{"eta", 0.1}, {"max_depth", 6}}},
              {"features", features},
              {"metrics", {{"valid", {{"auc", auc}, {"log_loss", 0.4}}}}}};
}

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_.root = dir_.path() + "/home";
    std::filesystem::create_directories(home_.root);
    auto r = ModelRegistry::Open(home_, clock_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    reg_ = std::move(*r);
  }
  testing::TempDir dir_;
  HomePaths home_;
  FakeClock clock_{1700000000LL * 1000000};
  std::unique_ptr<ModelRegistry> reg_;
};

TEST_F(RegistryTest, RegistersNumberedVersionsWithFilesCardAndLineage) {
  auto v1 = reg_->Register("engagement", "{\"learner\":{}}", CardWithAuc(0.7),
                           {{"ingest", "ing-1"}, {"table", "events"}});
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_EQ(v1->version, 1);
  auto v2 = reg_->Register("engagement", "{}", CardWithAuc(0.8), {});
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->version, 2);
  EXPECT_EQ(v1->dir, home_.models() + "/engagement/1");
  std::ifstream model(v1->model_path());
  std::string text((std::istreambuf_iterator<char>(model)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "{\"learner\":{}}");
  EXPECT_TRUE(std::filesystem::exists(v1->dir + "/card.json"));
  EXPECT_EQ(v1->card["version"], 1);
  EXPECT_EQ(v1->card["name"], "engagement");
  ASSERT_EQ(v1->lineage.size(), 2u);
  EXPECT_EQ(v1->lineage[0].ref, "ing-1");
  // No temporary directories left behind.
  for (const auto& e : std::filesystem::directory_iterator(home_.models() + "/engagement")) {
    EXPECT_NE(e.path().filename().string().rfind(".tmp", 0), 0u) << e.path();
  }
  auto all = reg_->List("engagement");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].version, 2);  // newest first
}

TEST_F(RegistryTest, ResolvesLatestVersionNumberAndAlias) {
  ASSERT_TRUE(reg_->Register("m", "{}", CardWithAuc(0.7), {}).ok());
  ASSERT_TRUE(reg_->Register("m", "{}", CardWithAuc(0.75), {}).ok());
  EXPECT_EQ(reg_->Resolve("m")->version, 2);
  EXPECT_EQ(reg_->Resolve("m@1")->version, 1);
  ASSERT_OK(reg_->SetAlias("m", "challenger", 1));
  EXPECT_EQ(reg_->Resolve("m@challenger")->version, 1);
  EXPECT_EQ(reg_->Resolve("m@challenger")->aliases, (std::vector<std::string>{"challenger"}));
  EXPECT_EQ(reg_->Resolve("m@champion").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(reg_->Resolve("m@9").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(reg_->Resolve("nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(reg_->Resolve("Bad Name").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(reg_->SetAlias("m", "champion", 7).status().code(), StatusCode::kNotFound);
}

TEST_F(RegistryTest, PromotionGateNeedsTheQualityBarAndABetterMetric) {
  PromotionGate gate;
  gate.min_value = 0.65;
  ASSERT_TRUE(reg_->Register("m", "{}", CardWithAuc(0.60), {}).ok());  // 1: below the bar
  ASSERT_TRUE(reg_->Register("m", "{}", CardWithAuc(0.70), {}).ok());  // 2
  ASSERT_TRUE(reg_->Register("m", "{}", CardWithAuc(0.69), {}).ok());  // 3: worse than 2
  ASSERT_TRUE(reg_->Register("m", "{}", CardWithAuc(0.74), {}).ok());  // 4

  auto d1 = reg_->Promote("m", 1, gate);
  ASSERT_TRUE(d1.ok());
  EXPECT_FALSE(d1->promoted);
  EXPECT_NE(d1->reason.find("quality bar"), std::string::npos) << d1->reason;

  auto d2 = reg_->Promote("m", 2, gate);
  EXPECT_TRUE(d2->promoted) << d2->reason;
  EXPECT_FALSE(d2->previous.has_value());
  EXPECT_EQ(reg_->Resolve("m@champion")->version, 2);

  auto d3 = reg_->Promote("m", 3, gate);
  EXPECT_FALSE(d3->promoted);
  EXPECT_NE(d3->reason.find("does not beat"), std::string::npos) << d3->reason;
  EXPECT_EQ(reg_->Resolve("m@champion")->version, 2);

  gate.min_improvement = 0.05;
  EXPECT_FALSE(reg_->Promote("m", 4, gate)->promoted);  // +0.04 is not enough
  gate.min_improvement = 0.01;
  auto d4 = reg_->Promote("m", 4, gate);
  EXPECT_TRUE(d4->promoted) << d4->reason;
  EXPECT_EQ(d4->previous, 2);
  EXPECT_EQ(reg_->Resolve("m@champion")->version, 4);
  // Every decision is in the audit trail.
  SqliteDb db = *SqliteDb::Open(home_.meta_db());
  SqliteStmt n = *db.Prepare("SELECT count(*), sum(promoted) FROM model_alias_history");
  ASSERT_TRUE(*n.Step());
  EXPECT_EQ(n.Int(0), 5);
  EXPECT_EQ(n.Int(1), 2);
}

TEST_F(RegistryTest, DiffShowsParamsMetricsAndFeatures) {
  ASSERT_TRUE(reg_->Register("m", "{}", CardWithAuc(0.70, {"a", "b"}), {}).ok());
  Json card = CardWithAuc(0.75, {"b", "c"});
  card["params"]["eta"] = 0.05;
  ASSERT_TRUE(reg_->Register("m", "{}", card, {}).ok());
  auto d = reg_->Diff("m", 1, 2);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ((*d)["params"]["eta"], Json::array({0.1, 0.05}));
  EXPECT_FALSE((*d)["params"].contains("max_depth"));
  EXPECT_NEAR((*d)["metrics"]["auc"]["change"].get<double>(), 0.05, 1e-12);
  EXPECT_EQ((*d)["features"]["added"], Json::array({"c"}));
  EXPECT_EQ((*d)["features"]["removed"], Json::array({"a"}));
}

TEST_F(RegistryTest, LeftoverDirectoryOfAKilledRegisterIsReplaced) {
  std::filesystem::create_directories(home_.models() + "/m/1");
  std::ofstream(home_.models() + "/m/1/model.json") << "half written";
  auto v = reg_->Register("m", "{\"ok\":1}", CardWithAuc(0.7), {});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->version, 1);
  std::ifstream model(v->model_path());
  std::string text((std::istreambuf_iterator<char>(model)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "{\"ok\":1}");
}

TEST_F(RegistryTest, BadNamesAreRejected) {
  EXPECT_EQ(reg_->Register("../x", "{}", CardWithAuc(0.7), {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(reg_->Register("m", "{}", Json::array(), {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(reg_->List("none").status().code(), StatusCode::kNotFound);
}

// Hostile references: each is refused with a reason, never a crash or a wrong version.
TEST_F(RegistryTest, MalformedReferencesAreInvalidAndMissingOnesSayWhatToRun) {
  ASSERT_TRUE(reg_->Register("m", "{}", CardWithAuc(0.7), {}).ok());
  ASSERT_TRUE(reg_->Register("m", "{}", CardWithAuc(0.8), {}).ok());
  for (const std::string& ref :
       {std::string("m@"), std::string("m@0"), std::string("m@-1"), std::string("m@+2"),
        std::string("m@99999999999999999999"), std::string("m@Champ!"), std::string("m@a b"),
        std::string("m@x@y"), std::string("@1"), std::string(""), std::string("M@1")}) {
    SCOPED_TRACE(ref);
    auto r = reg_->Resolve(ref);
    EXPECT_STATUS_CODE(r, StatusCode::kInvalidArgument);
  }
  EXPECT_NE(reg_->Resolve("m@").status().message().find("m@3 or m@champion"), std::string::npos);
  EXPECT_NE(reg_->Resolve("m@99999999999999999999").status().message().find("from 1 up"),
            std::string::npos);
  auto version = reg_->Resolve("m@9");
  EXPECT_STATUS_CODE(version, StatusCode::kNotFound);
  EXPECT_NE(version.status().message().find("1 .. 2"), std::string::npos)
      << version.status().message();
  auto alias = reg_->Resolve("m@champion");
  EXPECT_STATUS_CODE(alias, StatusCode::kNotFound);
  EXPECT_NE(alias.status().message().find(
                "run `engage models promote m 2` or `engage models alias m@2 champion`"),
            std::string::npos)
      << alias.status().message();
  for (const std::string& ref :
       {std::string("nope"), std::string("nope@1"), std::string("nope@champion")}) {
    auto missing = reg_->Resolve(ref);
    EXPECT_STATUS_CODE(missing, StatusCode::kNotFound);
    EXPECT_NE(missing.status().message().find("engage models list"), std::string::npos);
  }
  EXPECT_EQ(reg_->Resolve("m@00002")->version, 2);
}

TEST_F(RegistryTest, AliasesMustBeIdentifiersAndSetAliasReturnsThePreviousHolder) {
  ASSERT_TRUE(reg_->Register("m", "{}", CardWithAuc(0.7), {}).ok());
  ASSERT_TRUE(reg_->Register("m", "{}", CardWithAuc(0.8), {}).ok());
  for (const std::string& alias : {std::string(""), std::string("Champ"), std::string("a-b"),
                                   std::string("1"), std::string("../x"), std::string("a b"),
                                   std::string(64, 'a'), std::string("caf\xc3\xa9")}) {
    SCOPED_TRACE(alias);
    EXPECT_STATUS_CODE(reg_->SetAlias("m", alias, 1), StatusCode::kInvalidArgument);
  }
  auto first = reg_->SetAlias("m", "challenger", 1);
  ASSERT_OK(first);
  EXPECT_FALSE(first->has_value());
  auto second = reg_->SetAlias("m", "challenger", 2);
  ASSERT_OK(second);
  EXPECT_EQ(*second, std::optional<int64_t>(1));
  EXPECT_STATUS_CODE(reg_->SetAlias("m", "challenger", 0), StatusCode::kNotFound);
  EXPECT_EQ(reg_->Resolve("m@challenger")->version, 2);
}

TEST_F(RegistryTest, AFingerprintIsRegisteredOnceAndKindsDoNotMix) {
  Json card = CardWithAuc(0.7);
  card["kind"] = "table";
  card["fingerprint"] = Fingerprint(Json{{"data", 1}});
  auto v1 = reg_->Register("m", "{}", card, {});
  ASSERT_OK(v1);
  EXPECT_EQ(v1->fingerprint(), card["fingerprint"]);
  auto again = reg_->Register("m", "{}", card, {});
  EXPECT_STATUS_CODE(again, StatusCode::kAlreadyExists);
  EXPECT_NE(again.status().message().find("m@1"), std::string::npos);
  auto found = reg_->FindIdentical("m", "table", card["fingerprint"]);
  ASSERT_OK(found);
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->version, 1);
  EXPECT_FALSE(reg_->FindIdentical("m", "table", Fingerprint(Json{{"data", 2}}))->has_value());
  EXPECT_FALSE(reg_->FindIdentical("fresh", "table", card["fingerprint"])->has_value());
  // Another fingerprint is a new version; another kind under the same name is refused.
  card["fingerprint"] = Fingerprint(Json{{"data", 2}});
  EXPECT_EQ(reg_->Register("m", "{}", card, {})->version, 2);
  card["kind"] = "engagement";
  card["fingerprint"] = Fingerprint(Json{{"data", 3}});
  EXPECT_STATUS_CODE(reg_->Register("m", "{}", card, {}), StatusCode::kFailedPrecondition);
  EXPECT_STATUS_CODE(reg_->FindIdentical("m", "engagement", "x"), StatusCode::kFailedPrecondition);
  EXPECT_STATUS_CODE(reg_->FindIdentical("Bad Name", "table", "x"), StatusCode::kInvalidArgument);
  // The fingerprint is of the canonical text: key order does not matter.
  EXPECT_EQ(Fingerprint(Json::parse(R"({"a":1,"b":[1,2]})")),
            Fingerprint(Json::parse(R"({"b":[1,2],"a":1})")));
  EXPECT_NE(Fingerprint(Json{{"a", 1}}), Fingerprint(Json{{"a", 2}}));
}

TEST_F(RegistryTest, ShowAndDiffReadAsText) {
  Json card = CardWithAuc(0.7);
  card["kind"] = "engagement";
  card["data"] = Json{{"events_table", "events"}, {"cutoffs", {"2024-01-01", "2024-02-01"}}};
  ASSERT_TRUE(reg_->Register("m", "{}", card, {}).ok());
  card["params"]["max_depth"] = 3;
  ASSERT_TRUE(reg_->Register("m", "{}", card, {}).ok());
  ASSERT_OK(reg_->SetAlias("m", "champion", 2));
  std::string text = reg_->Resolve("m@champion")->ToText();
  EXPECT_EQ(text.rfind("m@2  (champion)\n", 0), 0u) << text;
  for (const char* part : {"  created      2023-11-14T22:13:20", "  metrics      auc 0.7",
                           "max_depth 3", "events_table events", "2024-01-01, 2024-02-01"}) {
    EXPECT_NE(text.find(part), std::string::npos) << part << " in\n" << text;
  }
  auto d = reg_->Diff("m", 1, 2);
  ASSERT_OK(d);
  std::string diff = DiffToText(*d);
  EXPECT_EQ(diff.rfind("m@1 -> m@2\n", 0), 0u) << diff;
  EXPECT_NE(diff.find("max_depth 6 -> 3"), std::string::npos) << diff;
  EXPECT_NE(diff.find("data       (same)"), std::string::npos) << diff;
}

}  // namespace
}  // namespace engage::ml
