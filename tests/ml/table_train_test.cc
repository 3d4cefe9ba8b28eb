#include "engage/ml/table_train.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include "lake/lake_fixture.h"

namespace engage::testing {
namespace {

using ml::FeatureKind;
using ml::SplitPart;
using ml::TableTrainRequest;
using ml::TableTrainResult;

// A snapshot table with one column of each kind the encoder handles and three label columns.
constexpr const char* kPeopleToml = R"(
[tables.people]
retention_days = 0
[[tables.people.columns]]
name = "id"
required = true
[[tables.people.columns]]
name = "plan"
[[tables.people.columns]]
name = "charges"
[[tables.people.columns]]
name = "age"
type = "int64"
[[tables.people.columns]]
name = "active"
type = "bool"
[[tables.people.columns]]
name = "signup"
type = "date"
[[tables.people.columns]]
name = "score"
type = "double"
[[tables.people.columns]]
name = "note"
[[tables.people.columns]]
name = "churn"
[[tables.people.columns]]
name = "churn_bool"
type = "bool"
[[tables.people.columns]]
name = "churn_int"
type = "int64"
)";

constexpr const char* kPeopleHeader =
    "id,plan,charges,age,active,signup,score,note,churn,churn_bool,churn_int\n";

double Sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

// `n` people whose churn depends on score (strongly), plan and age; about 2% of charges are blank
// and the first `unlabelled` rows have no churn value. `note` is free text (all distinct).
std::string PeopleCsv(int n, uint32_t seed, int unlabelled = 0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0, 1);
  std::uniform_real_distribution<double> unif(0, 1);
  const char* plans[] = {"basic", "plus", "pro"};
  std::ostringstream out;
  out << kPeopleHeader;
  for (int i = 0; i < n; ++i) {
    std::string plan = plans[i % 3];
    double score = normal(rng);
    int age = 18 + static_cast<int>(unif(rng) * 60);
    double z = 2.5 * score + (plan == "basic" ? 1.5 : 0) - 0.02 * (age - 48) - 0.5;
    bool churn = unif(rng) < Sigmoid(z);
    std::string charges = unif(rng) < 0.02 ? "" : std::to_string(20 + i % 80) + ".5";
    out << "c" << i << "," << plan << "," << charges << "," << age << ","
        << (i % 2 ? "true" : "false") << ",2024-01-" << (1 + i % 28 < 10 ? "0" : "") << 1 + i % 28
        << "," << score << ",note " << i << ",";
    if (i < unlabelled) {
      out << ",,\n";
    } else {
      out << (churn ? "Yes" : "No") << "," << (churn ? "true" : "false") << "," << (churn ? 1 : 0)
          << "\n";
    }
  }
  return out.str();
}

ml::TrainParams FastParams() {
  ml::TrainParams p = ml::DefaultTableTrainParams();
  p.nthread = 2;
  p.eta = 0.1;
  p.num_boost_round = 150;
  p.early_stopping_rounds = 20;
  return p;
}

class TableTrainTest : public LakeTest {
 protected:
  void SetUp() override {
    LakeTest::SetUp();
    AppendConfig(kPeopleToml);
  }

  // Ingests `csv`; the next Engine() sees it.
  void Ingest(const std::string& csv, const std::string& name = "people") {
    engine_.reset();
    lake_.reset();
    std::string path = dir_.path() + "/" + name + ".csv";
    std::ofstream(path) << csv;
    auto r = IngestFiles("people", {path});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->record.rows_rejected, 0) << r->quarantine_file;
  }

  sql::QueryEngine& Engine() {
    if (!engine_) {
      lake_ = Open(false);
      auto qe = sql::QueryEngine::Open(*lake_, 1);
      EXPECT_TRUE(qe.ok()) << qe.status().ToString();
      engine_ = std::move(*qe);
    }
    return *engine_;
  }

  static TableTrainRequest Request(const std::string& label = "churn") {
    TableTrainRequest req;
    req.table = "people";
    req.label_column = label;
    req.id_column = "id";
    for (const char* l : {"churn", "churn_bool", "churn_int"}) {
      if (label != l) req.exclude.push_back(l);
    }
    req.params = FastParams();
    return req;
  }

  Result<TableTrainResult> Train(const TableTrainRequest& req) {
    return ml::TrainOnTable(Engine(), req);
  }

  std::unique_ptr<lake::Lake> lake_;
  std::unique_ptr<sql::QueryEngine> engine_;
};

const ml::ColumnEncoding* FindColumn(const ml::TableEncoding& e, const std::string& name) {
  for (const auto& c : e.columns) {
    if (c.column == name) return &c;
  }
  return nullptr;
}

TEST_F(TableTrainTest, EncodesEachColumnByWhatItHolds) {
  Ingest(PeopleCsv(600, 1));
  auto r = Train(Request());
  ASSERT_OK(r);
  const ml::TableEncoding& e = r->encoding;
  ASSERT_NE(FindColumn(e, "plan"), nullptr);
  EXPECT_EQ(FindColumn(e, "plan")->kind, FeatureKind::kOneHot);
  // Values in byte order, whatever their counts.
  EXPECT_EQ(FindColumn(e, "plan")->values, (std::vector<std::string>{"basic", "plus", "pro"}));
  ASSERT_NE(FindColumn(e, "charges"), nullptr);
  EXPECT_EQ(FindColumn(e, "charges")->kind, FeatureKind::kNumericText);  // ~2% blank
  EXPECT_EQ(FindColumn(e, "age")->kind, FeatureKind::kNumeric);
  EXPECT_EQ(FindColumn(e, "active")->kind, FeatureKind::kBoolean);
  EXPECT_EQ(FindColumn(e, "signup")->kind, FeatureKind::kDays);
  EXPECT_EQ(FindColumn(e, "score")->kind, FeatureKind::kNumeric);
  // Free text with every value distinct is not one-hot encoded; label, id and excluded columns
  // are not features, nor is the lake's dt.
  EXPECT_EQ(FindColumn(e, "note"), nullptr);
  ASSERT_EQ(e.skipped.size(), 1u);
  EXPECT_EQ(e.skipped[0].first, "note");
  for (const char* not_feature : {"id", "churn", "churn_bool", "churn_int", "dt"}) {
    EXPECT_EQ(FindColumn(e, not_feature), nullptr) << not_feature;
  }
  EXPECT_EQ(e.feature_names,
            (std::vector<std::string>{"plan=basic", "plan=plus", "plan=pro", "charges", "age",
                                      "active", "signup", "score"}));
  EXPECT_EQ(r->feature_names(), r->model.FeatureNames());
  EXPECT_EQ(FindColumn(e, "charges")->first_feature, 3);
}

TEST_F(TableTrainTest, EncodeAppliesTheRecordedEncodingToNewRows) {
  Ingest(PeopleCsv(300, 2));
  auto r = Train(Request());
  ASSERT_OK(r);
  // The encoding survives JSON, as it would in a model card.
  auto enc = ml::TableEncoding::FromJson(r->encoding.ToJson());
  ASSERT_OK(enc);
  EXPECT_EQ(enc->feature_names, r->encoding.feature_names);
  auto rows = Engine().RunTrusted(
      "SELECT * FROM (VALUES ('x1', 'pro', ' ', 30, true, DATE '2024-01-02', 1.5), "
      "('x2', 'gold', '12.25', NULL, NULL, NULL, NULL)) AS t(id, plan, charges, age, active, "
      "signup, score)",
      "test");
  ASSERT_OK(rows);
  auto x = enc->Encode(*rows);
  ASSERT_OK(x);
  ASSERT_EQ(x->rows, 2);
  ASSERT_EQ(x->cols, 8);
  std::vector<float> first(x->Row(0).begin(), x->Row(0).end());
  EXPECT_EQ(first[0], 0);             // plan=basic
  EXPECT_EQ(first[2], 1);             // plan=pro
  EXPECT_TRUE(std::isnan(first[3]));  // blank charges
  EXPECT_EQ(first[4], 30);
  EXPECT_EQ(first[5], 1);
  EXPECT_EQ(first[6], 19724);  // 2024-01-02 is day 19724 since 1970-01-01
  EXPECT_FLOAT_EQ(first[7], 1.5f);
  std::vector<float> second(x->Row(1).begin(), x->Row(1).end());
  for (int k = 0; k < 3; ++k) EXPECT_EQ(second[k], 0) << "an unseen plan is all zeros";
  EXPECT_FLOAT_EQ(second[3], 12.25f);
  for (int k = 4; k < 8; ++k) EXPECT_TRUE(std::isnan(second[k])) << k;
  // A column the encoding needs must be there.
  auto missing = Engine().RunTrusted("SELECT 1 AS plan", "test");
  ASSERT_OK(missing);
  EXPECT_STATUS_CODE(enc->Encode(*missing), StatusCode::kNotFound);
}

TEST_F(TableTrainTest, DatesAndTimestampsBecomeDaysSince1970) {
  Ingest(PeopleCsv(30, 3));
  auto rows = Engine().RunTrusted(
      "SELECT TIMESTAMP '1970-01-02 12:00:00' AS t, DATE '1969-12-31' AS d, "
      "'1970-01-01 06:00:00+02' AS text, NULL::DATE AS missing",
      "test");
  ASSERT_OK(rows);
  ml::TableEncoding enc;
  for (const char* c : {"t", "d", "text", "missing"}) {
    enc.columns.push_back({c, FeatureKind::kDays, {}, 0, 1});
  }
  auto json = enc.ToJson();
  json.erase("features");
  auto full = ml::TableEncoding::FromJson(json);  // numbers the features
  ASSERT_OK(full);
  auto x = full->Encode(*rows);
  ASSERT_OK(x);
  EXPECT_DOUBLE_EQ(x->at(0, 0), 1.5);
  EXPECT_DOUBLE_EQ(x->at(0, 1), -1);
  EXPECT_FLOAT_EQ(x->at(0, 2), 4.0f / 24);  // 04:00 UTC
  EXPECT_TRUE(std::isnan(x->at(0, 3)));
  // DuckDB's C API cannot print TIMESTAMP WITH TIME ZONE: a clear error, not silent NaNs.
  auto tz = Engine().RunTrusted("SELECT TIMESTAMPTZ '1970-01-01 06:00:00+00' AS t", "test");
  ASSERT_OK(tz);
  ml::TableEncoding one;
  one.columns.push_back({"t", FeatureKind::kDays, {}, 0, 1});
  one.feature_names = {"t"};
  EXPECT_STATUS_CODE(one.Encode(*tz), StatusCode::kInvalidArgument);
}

TEST_F(TableTrainTest, LearnsASyntheticSignal) {
  Ingest(PeopleCsv(3000, 4, /*unlabelled=*/25));
  auto r = Train(Request());
  ASSERT_OK(r);
  EXPECT_GT(r->test.roc_auc, 0.8);
  EXPECT_EQ(r->rows, 3000);
  EXPECT_EQ(r->rows_unlabelled, 25);
  EXPECT_EQ(r->rows_train + r->rows_valid + r->rows_test, 2975);
  EXPECT_NEAR(static_cast<double>(r->rows_test) / 2975, 0.2, 0.03);
  EXPECT_NEAR(static_cast<double>(r->rows_valid) / 2975, 0.16, 0.03);
  EXPECT_EQ(r->test.count, r->rows_test);
  ASSERT_FALSE(r->importance.empty());
  EXPECT_EQ(r->importance[0].feature, "score");
  EXPECT_GT(r->summary().rounds_run, 0);
  EXPECT_GT(r->elapsed_s, 0);
  Json j = r->ToJson();
  for (const char* k :
       {"auc", "pr_auc", "log_loss", "brier", "rows_train", "rows_valid", "rows_test",
        "rows_unlabelled", "best_iteration", "top_features", "encoding", "test", "params"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
  EXPECT_EQ(j["auc"].get<double>(), r->test.roc_auc);
  EXPECT_LE(j["top_features"].size(), 10u);
}

TEST_F(TableTrainTest, AcceptsBooleanIntegerAndTextLabels) {
  Ingest(PeopleCsv(900, 5));
  double auc = -1;
  for (const char* label : {"churn", "churn_bool", "churn_int"}) {
    auto r = Train(Request(label));
    ASSERT_OK(r);
    if (auc < 0) auc = r->test.roc_auc;
    // The same labels, spelled differently, give the same model.
    EXPECT_DOUBLE_EQ(r->test.roc_auc, auc) << label;
  }
}

TEST_F(TableTrainTest, SplitByIdIsDeterministicAndStable) {
  Ingest(PeopleCsv(1000, 6));
  auto a = Train(Request());
  auto b = Train(Request());
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_EQ(a->rows_test, b->rows_test);
  EXPECT_EQ(a->rows_valid, b->rows_valid);
  EXPECT_DOUBLE_EQ(a->test.roc_auc, b->test.roc_auc);
  EXPECT_DOUBLE_EQ(a->test.log_loss, b->test.log_loss);
  // The split is a function of the id alone: counting with SplitOfId gives the same sizes.
  int64_t test = 0, valid = 0;
  for (int i = 0; i < 1000; ++i) {
    SplitPart p = ml::SplitOfId("c" + std::to_string(i), 42, 0.2, 0.2);
    test += p == SplitPart::kTest;
    valid += p == SplitPart::kValid;
  }
  EXPECT_EQ(a->rows_test, test);
  EXPECT_EQ(a->rows_valid, valid);
  EXPECT_EQ(ml::SplitOfId("c17", 42, 0.2, 0.2), ml::SplitOfId("c17", 42, 0.2, 0.2));
  // Another seed moves rows between splits.
  int moved = 0;
  for (int i = 0; i < 200; ++i) {
    std::string id = "c" + std::to_string(i);
    moved += ml::SplitOfId(id, 42, 0.5, 0) != ml::SplitOfId(id, 7, 0.5, 0);
  }
  EXPECT_GT(moved, 50);
}

TEST_F(TableTrainTest, SplitWithoutIdIsASeededShuffle) {
  Ingest(PeopleCsv(1000, 7));
  TableTrainRequest req = Request();
  req.id_column = "";
  req.exclude.push_back("id");
  auto a = Train(req);
  auto b = Train(req);
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_EQ(a->rows_test, 200);
  EXPECT_EQ(a->rows_valid, 160);
  EXPECT_EQ(a->rows_train, 640);
  EXPECT_DOUBLE_EQ(a->test.roc_auc, b->test.roc_auc);
  req.seed = 7;
  auto c = Train(req);
  ASSERT_OK(c);
  EXPECT_NE(a->test.roc_auc, c->test.roc_auc);
}

TEST_F(TableTrainTest, UnknownTableOrColumnIsNotFound) {
  Ingest(PeopleCsv(100, 8));
  TableTrainRequest req = Request();
  req.table = "nope";
  auto t = Train(req);
  EXPECT_STATUS_CODE(t, StatusCode::kNotFound);
  EXPECT_NE(t.status().message().find("nope"), std::string::npos);
  req = Request();
  req.label_column = "churned";
  auto l = Train(req);
  EXPECT_STATUS_CODE(l, StatusCode::kNotFound);
  EXPECT_NE(l.status().message().find("'churned'"), std::string::npos);
  req = Request();
  req.id_column = "customer";
  EXPECT_STATUS_CODE(Train(req), StatusCode::kNotFound);
  req = Request();
  req.exclude.push_back("colour");
  auto x = Train(req);
  EXPECT_STATUS_CODE(x, StatusCode::kNotFound);
  EXPECT_NE(x.status().message().find("colour"), std::string::npos);
}

TEST_F(TableTrainTest, BadLabelValueIsInvalidArgumentNamingIt) {
  std::string csv = PeopleCsv(100, 9);
  size_t pos = csv.find(",No,");
  ASSERT_NE(pos, std::string::npos);
  csv.replace(pos, 4, ",Maybe,");
  Ingest(csv);
  auto r = Train(Request());
  EXPECT_STATUS_CODE(r, StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("'churn'"), std::string::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find("'Maybe'"), std::string::npos) << r.status().ToString();
  // A numeric label other than 0/1, and a column that is not a label at all.
  auto age = Train(Request("age"));
  EXPECT_STATUS_CODE(age, StatusCode::kInvalidArgument);
  EXPECT_NE(age.status().message().find("'age'"), std::string::npos);
  auto day = Train(Request("signup"));
  EXPECT_STATUS_CODE(day, StatusCode::kInvalidArgument);
}

TEST_F(TableTrainTest, BadRequestsAreRejected) {
  Ingest(PeopleCsv(100, 10));
  TableTrainRequest req = Request();
  req.test_fraction = 1.5;
  EXPECT_STATUS_CODE(Train(req), StatusCode::kInvalidArgument);
  req = Request();
  req.valid_fraction = -0.1;
  EXPECT_STATUS_CODE(Train(req), StatusCode::kInvalidArgument);
  req = Request();
  req.id_column = "churn";
  EXPECT_STATUS_CODE(Train(req), StatusCode::kInvalidArgument);
  req = Request();
  req.exclude.push_back("churn");
  EXPECT_STATUS_CODE(Train(req), StatusCode::kInvalidArgument);
  req = Request();
  req.params.objective = "no:such";
  EXPECT_STATUS_CODE(Train(req), StatusCode::kInvalidArgument);
}

TEST_F(TableTrainTest, OneClassOrNoRowsIsAFailedPrecondition) {
  EXPECT_STATUS_CODE(Train(Request()), StatusCode::kFailedPrecondition);  // empty table
  std::string csv = kPeopleHeader;
  for (int i = 0; i < 50; ++i)
    csv += "c" + std::to_string(i) + ",basic,1,30,true,2024-01-01,0,,No,,\n";
  Ingest(csv, "one_class");
  auto r = Train(Request());
  EXPECT_STATUS_CODE(r, StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("one class"), std::string::npos);
}

TEST(SetTrainParamTest, KnownFieldsAreTypedAndOthersPassThrough) {
  ml::TrainParams p;
  ASSERT_OK(ml::SetTrainParam(p, "eta", "0.3"));
  EXPECT_DOUBLE_EQ(p.eta, 0.3);
  ASSERT_OK(ml::SetTrainParam(p, "max_depth", "3"));
  EXPECT_EQ(p.max_depth, 3);
  ASSERT_OK(ml::SetTrainParam(p, "eval_metric", "aucpr"));
  EXPECT_EQ(p.eval_metric, "aucpr");
  ASSERT_OK(ml::SetTrainParam(p, "scale_pos_weight", "3"));
  ASSERT_OK(ml::SetTrainParam(p, "scale_pos_weight", "4"));
  EXPECT_EQ(p.extra, (std::vector<std::pair<std::string, std::string>>{{"scale_pos_weight", "4"}}));
  EXPECT_STATUS_CODE(ml::SetTrainParam(p, "max_depth", "deep"), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(ml::SetTrainParam(p, "eta", "0.1x"), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(ml::SetTrainParam(p, "", "1"), StatusCode::kInvalidArgument);
}

// XGBoost only warns about a parameter it does not use: a misspelt one is refused here.
TEST(SetTrainParamTest, UnknownKeyIsRefusedNamingIt) {
  ml::TrainParams p;
  Status s = ml::SetTrainParam(p, "max_dpeth", "3");
  EXPECT_STATUS_CODE(s, StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'max_dpeth'"), std::string::npos);
  EXPECT_TRUE(p.extra.empty());
  ASSERT_OK(ml::SetTrainParam(p, "max_delta_step", "1"));
}

// Out-of-range values are refused at once, naming the range (XGBoost would say so only after the
// features are built, in its own words).
TEST(SetTrainParamTest, OutOfRangeValuesAreRefusedNamingTheRange) {
  ml::TrainParams p;
  for (auto [key, value] :
       std::vector<std::pair<const char*, const char*>>{{"eta", "-1"},
                                                        {"eta", "0"},
                                                        {"subsample", "1.5"},
                                                        {"subsample", "0"},
                                                        {"max_depth", "2000"},
                                                        {"lambda", "-0.1"},
                                                        {"num_boost_round", "0"},
                                                        {"early_stopping_rounds", "-1"},
                                                        {"max_bin", "1"},
                                                        {"eta", "nan"}}) {
    Status s = ml::SetTrainParam(p, key, value);
    EXPECT_STATUS_CODE(s, StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find(key), std::string::npos) << s.message();
  }
  Status eta = ml::SetTrainParam(p, "eta", "-1");
  EXPECT_NE(eta.message().find("must be above 0"), std::string::npos) << eta.message();
  ASSERT_OK(ml::SetTrainParam(p, "subsample", "1"));
  ASSERT_OK(ml::SetTrainParam(p, "max_depth", "0"));
}

TEST(ApplyTrainParamsTest, FlagsAreKeyValueAndSeedHasItsOwnFlag) {
  ml::TrainParams p;
  ASSERT_OK(ml::ApplyTrainParams({"eta=0.2", "num_boost_round=7"}, p));
  EXPECT_DOUBLE_EQ(p.eta, 0.2);
  EXPECT_EQ(p.num_boost_round, 7);
  EXPECT_STATUS_CODE(ml::ApplyTrainParams({"eta"}, p), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(ml::ApplyTrainParams({"=1"}, p), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(ml::ApplyTrainParams({"seed=3"}, p), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace engage::testing
