#include "engage/features/features.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "lake/lake_fixture.h"

namespace engage::testing {
namespace {

using features::FeatureBuilder;
using features::FeatureFrame;

class FeaturesTest : public LakeTest {
 protected:
  // Events up to mid-July 2024 are in the past (ingest rejects times far in the future).
  void SetUp() override {
    LakeTest::SetUp();
    clock_.AdvanceMicros(60LL * 86400 * 1000000);
  }

  // Writes `rows` (after the header) as a CSV of events and ingests it.
  void IngestEvents(const std::string& rows, const std::string& name) {
    std::string path = dir_.path() + "/" + name + ".csv";
    std::ofstream(path) << EventsHeader() << rows;
    auto r = IngestFiles("events", {path});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->record.rows_rejected, 0) << r->quarantine_file;
  }

  Result<FeatureFrame> Build(const std::vector<std::string>& cutoffs,
                             EngagementConfig cfg = EngagementConfig{}) {
    lake_ = Open(false);
    auto qe = sql::QueryEngine::Open(*lake_, 1);
    if (!qe.ok()) return qe.status();
    engine_ = std::move(*qe);
    if (cfg.customers_table == "customers") cfg.customers_table = "";  // events only
    FeatureBuilder b(*engine_, cfg);
    return b.Build(cutoffs);
  }

  static float Value(const FeatureFrame& f, const std::string& customer, const std::string& name) {
    int j = f.Find(name);
    EXPECT_GE(j, 0) << name;
    for (int64_t i = 0; i < f.rows(); ++i) {
      if (f.customer_ids[i] == customer && j >= 0) return f.columns[j][i];
    }
    ADD_FAILURE() << "no customer " << customer;
    return NAN;
  }

  std::unique_ptr<lake::Lake> lake_;
  std::unique_ptr<sql::QueryEngine> engine_;
};

// Customer 1: sessions and a purchase before the cutoff, a purchase after it (label 1).
// Customer 2: one old purchase, nothing after (label 0).
// Customer 3: only events after the cutoff: not in the population at the cutoff.
const char* kEvents =
    "1,1,2024-05-01T10:00:00Z,session,web,,\n"
    "2,1,2024-05-20T12:00:00Z,purchase,web,40.0,\n"
    "3,1,2024-05-30T00:00:00Z,session,app,,\n"
    "4,2,2024-03-01T00:00:00Z,purchase,store,10.0,\n"
    "5,1,2024-06-05T00:00:00Z,purchase,web,25.0,\n"
    "6,3,2024-06-02T00:00:00Z,session,web,,\n";

TEST_F(FeaturesTest, ComputesRecencyFrequencyMonetaryAndLabels) {
  IngestEvents(kEvents, "a");
  EngagementConfig cfg;
  cfg.horizon_days = 5;  // the data ends 2024-06-06
  auto f = Build({"2024-06-01"}, cfg);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_EQ(f->customer_ids, (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(f->labels, (std::vector<float>{1, 0}));
  EXPECT_FLOAT_EQ(Value(*f, "1", "recency_days"), 2.0f);  // 2024-05-30 -> 06-01
  EXPECT_FLOAT_EQ(Value(*f, "1", "engaged_recency_days"), 11.5f);
  EXPECT_FLOAT_EQ(Value(*f, "1", "events_30d"), 2);  // 05-20 and 05-30
  EXPECT_FLOAT_EQ(Value(*f, "1", "events_90d"), 3);
  EXPECT_FLOAT_EQ(Value(*f, "1", "engaged_30d"), 1);
  EXPECT_FLOAT_EQ(Value(*f, "1", "monetary_30d"), 40);
  EXPECT_FLOAT_EQ(Value(*f, "1", "type_session_90d"), 2);
  EXPECT_FLOAT_EQ(Value(*f, "1", "channel_app_90d"), 1);
  // Rates over the observed life (first event 2024-05-01 10:00, 30.58 days before the cutoff)
  // and the usual gaps since the last session.
  float tenure = 30.0f + 14.0f / 24;
  EXPECT_FLOAT_EQ(Value(*f, "1", "tenure_days"), tenure);
  EXPECT_FLOAT_EQ(Value(*f, "1", "last_session_days"), 2);
  EXPECT_FLOAT_EQ(Value(*f, "1", "rate_session_per_day"), 2 / tenure);
  EXPECT_FLOAT_EQ(Value(*f, "1", "session_gaps_since_last"), 2 * 2 / tenure);
  EXPECT_FLOAT_EQ(Value(*f, "1", "events_per_day"), 3 / tenure);
  EXPECT_TRUE(std::isnan(Value(*f, "2", "last_session_days")));
  EXPECT_FLOAT_EQ(Value(*f, "2", "events_30d"), 0);
  EXPECT_FLOAT_EQ(Value(*f, "2", "engaged_90d"), 0);  // 92 days before the cutoff
  EXPECT_FLOAT_EQ(Value(*f, "2", "engaged_365d"), 1);
  EXPECT_FLOAT_EQ(Value(*f, "2", "tenure_days"), 92);  // 2024-03-01 -> 06-01
  EXPECT_FLOAT_EQ(Value(*f, "2", "monetary_mean"), 10);
  EXPECT_TRUE(std::isnan(Value(*f, "2", "engaged_recency_days")) == false);
  EXPECT_EQ(f->cutoffs, (std::vector<std::string>{"2024-06-01", "2024-06-01"}));
}

TEST_F(FeaturesTest, LabelIsUnknownWhenTheDataEndsBeforeTheHorizon) {
  IngestEvents(kEvents, "a");
  auto f = Build({"2024-06-01", "2024-06-04"});  // data ends 2024-06-05: H=30 reaches past it
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  for (float l : f->labels) EXPECT_TRUE(std::isnan(l));
}

// Changing, adding or removing any event at or after the cutoff leaves the features at the
// cutoff unchanged: only the label may change.
TEST_F(FeaturesTest, EventsAtOrAfterTheCutoffDoNotChangeFeatures) {
  IngestEvents(kEvents, "a");
  auto before = Build({"2024-06-01"});
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  // New events exactly at the cutoff and after it, for existing and new customers, of every
  // type and with large amounts.
  IngestEvents(
      "10,1,2024-06-01T00:00:00Z,purchase,app,999.0,\n"
      "11,2,2024-06-01T00:00:00Z,support_contact,email,,\n"
      "12,2,2024-06-10T08:00:00Z,purchase,store,500.0,\n"
      "13,4,2024-06-03T00:00:00Z,purchase,web,5.0,\n"
      "14,1,2024-07-15T00:00:00Z,page_view,web,,\n",
      "b");
  auto after = Build({"2024-06-01"});
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->customer_ids, before->customer_ids);
  EXPECT_EQ(after->names, before->names);
  for (size_t j = 0; j < before->names.size(); ++j) {
    for (int64_t i = 0; i < before->rows(); ++i) {
      float a = before->columns[j][i], b = after->columns[j][i];
      EXPECT_TRUE((std::isnan(a) && std::isnan(b)) || a == b)
          << before->names[j] << " of " << before->customer_ids[i] << ": " << a << " vs " << b;
    }
  }
  EXPECT_EQ(after->labels, (std::vector<float>{1, 1}));  // customer 2 bought on 06-10
}

TEST_F(FeaturesTest, EventsBeforeTheLookbackAreIgnored) {
  IngestEvents(kEvents, "a");
  EngagementConfig cfg;
  cfg.lookback_days = 60;
  auto f = Build({"2024-06-01"}, cfg);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  // Customer 2's only event (2024-03-01) is 92 days old: outside the lookback.
  EXPECT_EQ(f->customer_ids, (std::vector<std::string>{"1"}));
}

TEST_F(FeaturesTest, UserSqlFeaturesSeeOnlyEventsBeforeTheCutoff) {
  IngestEvents(kEvents, "a");
  EngagementConfig cfg;
  cfg.sql_features.push_back(
      {"web_share",
       "SELECT customer_id, avg(CAST(channel = 'web' AS DOUBLE)) AS value FROM "
       "{events} GROUP BY 1"});
  cfg.sql_features.push_back(
      {"max_amount", "SELECT customer_id, max(amount) AS value FROM {events} GROUP BY 1"});
  auto f = Build({"2024-06-01"}, cfg);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_FLOAT_EQ(Value(*f, "1", "web_share"), 2.0f / 3);
  EXPECT_FLOAT_EQ(Value(*f, "1", "max_amount"), 40);  // not the 25.0 of 06-05

  EngagementConfig bad;
  bad.sql_features.push_back({"broken", "SELECT customer_id, nope AS value FROM {events}"});
  auto e = Build({"2024-06-01"}, bad);
  EXPECT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("broken"), std::string::npos) << e.status().ToString();
}

TEST_F(FeaturesTest, TrainingCutoffsEndAtTheLatestLabelledDay) {
  IngestEvents(kEvents, "a");
  lake_ = Open(false);
  auto qe = sql::QueryEngine::Open(*lake_, 1);
  ASSERT_TRUE(qe.ok());
  EngagementConfig cfg;
  cfg.customers_table = "";
  cfg.training_cutoffs = 3;
  cfg.cutoff_step_days = 7;
  FeatureBuilder b(**qe, cfg);
  EXPECT_EQ(*b.DataEnd(), "2024-06-06");
  EXPECT_EQ(*b.TrainingCutoffs(),
            (std::vector<std::string>{"2024-04-23", "2024-04-30", "2024-05-07"}));
}

TEST_F(FeaturesTest, UnknownTablesAndColumnsAreNamed) {
  IngestEvents(kEvents, "a");
  EngagementConfig cfg;
  cfg.events_table = "clicks";
  auto e = Build({"2024-06-01"}, cfg);
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  EXPECT_NE(e.status().message().find("clicks"), std::string::npos);
  EngagementConfig col;
  col.amount_column = "price";
  auto c = Build({"2024-06-01"}, col);
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_NE(c.status().message().find("price"), std::string::npos);
  auto d = Build({"2024-13-01"});
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
}

// A cutoff at which no customer has history is refused naming the cutoff and the events' dates;
// the cutoffs just inside the range are accepted. Events span 2024-03-01 .. 2024-06-05.
TEST_F(FeaturesTest, CutoffsOutsideTheEventsAreRefusedNamingTheDates) {
  IngestEvents(kEvents, "a");
  EngagementConfig cfg;
  cfg.customers_table = "";
  cfg.lookback_days = 30;
  lake_ = Open(false);
  auto qe = sql::QueryEngine::Open(*lake_, 1);
  ASSERT_OK(qe);
  FeatureBuilder b(**qe, cfg);
  for (const std::string& cutoff : {std::string("2030-01-01"), std::string("2024-03-01"),
                                    std::string("1999-12-31"), std::string("2024-07-06")}) {
    SCOPED_TRACE(cutoff);
    Status s = b.CheckCutoffs({"2024-06-01", cutoff});
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
    EXPECT_NE(s.message().find("cutoff " + cutoff +
                               " is outside the events' dates 2024-03-01 .. 2024-06-05"),
              std::string::npos)
        << s.message();
    EXPECT_NE(s.message().find("from 2024-03-02 to 2024-07-05"), std::string::npos) << s.message();
  }
  for (const std::string& cutoff :
       {std::string("2024-03-02"), std::string("2024-06-06"), std::string("2024-07-05")}) {
    ASSERT_OK(b.CheckCutoffs({cutoff}));
    auto f = b.Build({cutoff});
    ASSERT_OK(f);
    EXPECT_GT(f->rows(), 0) << cutoff;
  }
  EXPECT_EQ(b.CheckCutoffs({"2024-13-01"}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(b.CheckCutoffs({"tomorrow"}).code(), StatusCode::kInvalidArgument);
  ASSERT_OK(b.CheckCutoffs({}));
}

TEST_F(FeaturesTest, ACutoffOnAnEmptyLakeIsAFailedPrecondition) {
  lake_ = Open(false);
  auto qe = sql::QueryEngine::Open(*lake_, 1);
  ASSERT_OK(qe);
  EngagementConfig cfg;
  FeatureBuilder b(**qe, cfg);
  EXPECT_EQ(b.CheckCutoffs({"2024-06-01"}).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(b.CheckCutoffs({"06/01/2024"}).code(), StatusCode::kInvalidArgument);
}

TEST_F(FeaturesTest, CsvAndSummaryDescribeTheRows) {
  IngestEvents(kEvents, "a");
  EngagementConfig cfg;
  cfg.horizon_days = 5;
  auto f = Build({"2024-06-01"}, cfg);
  ASSERT_OK(f);
  std::string csv = f->ToCsv();
  EXPECT_EQ(csv.rfind("customer_id,cutoff,label,", 0), 0u) << csv;
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3);
  EXPECT_NE(csv.find("\n1,2024-06-01,1,"), std::string::npos) << csv;
  Json summary = f->Summary();
  EXPECT_EQ(summary["rows"], 2);
  EXPECT_EQ(summary["labelled"], 2);
  EXPECT_DOUBLE_EQ(summary["positive_rate"].get<double>(), 0.5);
  EXPECT_EQ(summary["features"].size(), f->names.size());
}

TEST(DayTest, ParsesAndFormatsDays) {
  EXPECT_EQ(*features::ParseDay("1970-01-01"), 0);
  EXPECT_EQ(*features::ParseDay("2024-03-01"), 19783);
  EXPECT_EQ(features::FormatDay(19783), "2024-03-01");
  EXPECT_FALSE(features::ParseDay("2024-02-30").ok());
  EXPECT_FALSE(features::ParseDay("24-02-03").ok());
}

}  // namespace
}  // namespace engage::testing
