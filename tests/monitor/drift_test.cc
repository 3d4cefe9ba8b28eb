// Drift: the statistics against hand-computed values, engage_bin_counts' bins, and table drift on
// generated data with a known shift in some columns (flags those and only those; the same window
// against itself flags nothing), with the bad inputs each giving an error that names them.
#include "engage/monitor/drift.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <set>
#include <string>

#include "lake/lake_fixture.h"

namespace engage::testing {
namespace {

using monitor::ColumnDrift;
using monitor::DriftReport;
using monitor::DriftRequest;

// --- statistics ---------------------------------------------------------------------------------

TEST(DriftStatsTest, PsiMatchesHandComputedValue) {
  // r = (.5, .5), c = (.25, .75): (-.25)ln(.5) + (.25)ln(1.5)
  EXPECT_NEAR(monitor::Psi({50, 50}, {25, 75}), 0.25 * std::log(2.0) + 0.25 * std::log(1.5), 1e-12);
  EXPECT_DOUBLE_EQ(monitor::Psi({3, 7}, {30, 70}), 0.0);
  // An empty bin is floored at a share of 1e-4, so PSI stays finite.
  EXPECT_NEAR(monitor::Psi({50, 50}, {0, 100}),
              (1e-4 - 0.5) * std::log(1e-4 / 0.5) + 0.5 * std::log(2.0), 1e-12);
}

TEST(DriftStatsTest, JensenShannonDistanceIsZeroForSameAndOneForDisjoint) {
  EXPECT_NEAR(monitor::JensenShannonDistance({1, 2, 3}, {2, 4, 6}), 0.0, 1e-12);
  EXPECT_NEAR(monitor::JensenShannonDistance({1, 0}, {0, 1}), 1.0, 1e-12);
  EXPECT_NEAR(monitor::JensenShannonDistance({50, 50}, {25, 75}), 0.22089576884901735, 1e-12);
}

TEST(DriftStatsTest, GridKsIsTheLargestGapOfCumulativeShares) {
  // Cumulative .25 .5 .75 1 against 0 0 .5 1.
  EXPECT_DOUBLE_EQ(monitor::GridKsStatistic({1, 1, 1, 1}, {0, 0, 2, 2}), 0.5);
  EXPECT_DOUBLE_EQ(monitor::GridKsStatistic({1, 1}, {5, 5}), 0.0);
}

TEST(DriftStatsTest, KolmogorovDistributionMatchesKnownValues) {
  EXPECT_NEAR(monitor::KolmogorovSurvival(1.0), 0.26999967167735456, 1e-9);
  EXPECT_NEAR(monitor::KolmogorovSurvival(0.5), 0.9639452436648751, 1e-9);
  EXPECT_NEAR(monitor::KolmogorovSurvival(1.36), 0.049485876755377876, 1e-9);  // the 5% point
  EXPECT_NEAR(monitor::KolmogorovSurvival(1.1), 0.17771819260640118, 1e-9);    // small-x series
  EXPECT_DOUBLE_EQ(monitor::KolmogorovSurvival(0), 1.0);
  // n = m = 100: e = 50, Q((sqrt(50) + 0.12 + 0.11 / sqrt(50)) * 0.2).
  EXPECT_NEAR(monitor::KolmogorovSmirnovPValue(0.2, 100, 100), 0.03137665215307253, 1e-9);
}

TEST(DriftStatsTest, ChiSquaredSurvivalMatchesCriticalValues) {
  EXPECT_NEAR(monitor::ChiSquaredSurvival(3.841458820694124, 1), 0.05, 1e-9);
  EXPECT_NEAR(monitor::ChiSquaredSurvival(5.991464547107979, 2), 0.05, 1e-9);
  EXPECT_NEAR(monitor::ChiSquaredSurvival(18.307038053275146, 10), 0.05, 1e-9);
  EXPECT_NEAR(monitor::ChiSquaredSurvival(0.5, 10), 0.9999933882894391, 1e-12);
  EXPECT_NEAR(monitor::RegularizedGammaQ(1, 2.5), std::exp(-2.5), 1e-12);
  EXPECT_NEAR(monitor::RegularizedGammaQ(1, 0.3), std::exp(-0.3), 1e-12);
}

TEST(DriftStatsTest, ChiSquaredHomogeneityOfATwoByThreeTable) {
  // Expected 15 20 25 on each side: (25 + 0 + 25) / 15 * ... = 5.3333; df 2: p = e^(-x/2).
  monitor::ChiSquaredTest t = monitor::ChiSquaredHomogeneity({10, 20, 30}, {20, 20, 20});
  EXPECT_NEAR(t.statistic, 16.0 / 3.0, 1e-12);
  EXPECT_EQ(t.df, 2);
  EXPECT_NEAR(t.p_value, std::exp(-8.0 / 3.0), 1e-12);
  // A category empty on both sides does not count.
  EXPECT_EQ(monitor::ChiSquaredHomogeneity({10, 0, 30}, {20, 0, 20}).df, 1);
}

TEST(DriftStatsTest, CompareNumericMergesGridBinsIntoDecilesAndCountsMissing) {
  // Grid 1 2 3; the one decile is 2. Reference 40 values of 50 rows, current 40 of 40.
  ColumnDrift d = monitor::CompareNumeric("x", {1, 2, 3}, {2}, {10, 10, 10, 10}, 50, {0, 0, 20, 20},
                                          40, DriftConfig{});
  EXPECT_EQ(d.kind, "numeric");
  // Decile bins: reference 20 20, current 0 40.
  EXPECT_NEAR(*d.psi, (1e-4 - 0.5) * std::log(1e-4 / 0.5) + 0.5 * std::log(2.0), 1e-12);
  EXPECT_DOUBLE_EQ(*d.statistic, 0.5);
  EXPECT_NEAR(*d.p_value, monitor::KolmogorovSmirnovPValue(0.5, 40, 40), 1e-15);
  EXPECT_DOUBLE_EQ(d.reference_missing, 0.2);
  EXPECT_DOUBLE_EQ(d.current_missing, 0.0);
  EXPECT_DOUBLE_EQ(d.missing_change, -0.2);
  EXPECT_TRUE(d.drifted);
  EXPECT_NE(d.reason.find("PSI"), std::string::npos);
}

TEST(DriftStatsTest, SmallShiftWithManyRowsNeedsTheMinimumEffect) {
  // A KS gap of 0.02 over a million rows a side: p is tiny, but the effect is below 0.1.
  ColumnDrift d = monitor::CompareNumeric("x", {0}, {0}, {500000, 500000}, 1000000,
                                          {520000, 480000}, 1000000, DriftConfig{});
  EXPECT_LT(*d.p_value, 1e-10);
  EXPECT_NEAR(*d.statistic, 0.02, 1e-12);
  EXPECT_FALSE(d.drifted) << d.reason;
}

TEST(DriftStatsTest, AColumnWithNoValuesOnOneSideDriftsWithoutStatistics) {
  ColumnDrift d = monitor::CompareCategorical("c", {5, 5}, 10, {0, 0}, 10, DriftConfig{});
  EXPECT_FALSE(d.psi.has_value());
  EXPECT_TRUE(d.drifted);
  EXPECT_DOUBLE_EQ(d.missing_change, 1.0);
  EXPECT_TRUE(d.ToJson()["psi"].is_null());
}

TEST(DriftStatsTest, BinValuesUsesUpperInclusiveBinsAndSkipsNaN) {
  std::vector<int64_t> c = monitor::BinValues({1, 2}, {0.5f, 1.0f, 1.5f, 2.0f, 7.0f, NAN});
  EXPECT_EQ(c, (std::vector<int64_t>{2, 2, 1}));
}

TEST(DriftStatsTest, DatasetDriftAtTheConfiguredShare) {
  DriftReport r;
  r.thresholds.dataset_share = 0.5;
  r.columns.resize(4);
  r.columns[0].drifted = true;
  r.Decide();
  EXPECT_FALSE(r.dataset_drift);
  r.columns[1].drifted = true;
  r.Decide();
  EXPECT_TRUE(r.dataset_drift);
  EXPECT_EQ(r.drifted_columns, 2);
}

// --- windows ------------------------------------------------------------------------------------

TEST(DriftWindowTest, DatesAndTimestamps) {
  auto w = monitor::ParseDriftWindow("2024-01-01..2024-01-31", "reference");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->start, "2024-01-01 00:00:00");
  EXPECT_EQ(w->end, "2024-02-01 00:00:00");
  EXPECT_FALSE(w->end_inclusive);
  EXPECT_EQ(w->dt_from, "2024-01-01");
  EXPECT_EQ(w->dt_to, "2024-01-31");
  auto t = monitor::ParseDriftWindow("2024-01-01T06:00:00Z..2024-01-01T18:30:00", "current");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->start, "2024-01-01 06:00:00");
  EXPECT_EQ(t->end, "2024-01-01 18:30:00");
  EXPECT_TRUE(t->end_inclusive);
  EXPECT_TRUE(monitor::ParseDriftWindow("2024-03-05..2024-03-05", "current").ok());
}

TEST(DriftWindowTest, MalformedWindowsNameTheWindow) {
  for (const char* bad :
       {"2024-01-01", "a..b", "2024-02-01..2024-01-01", "2024-02-30..2024-03-01", "2024-01-01..",
        "2024-01-01T25:00:00..2024-01-02", "2024-01-02T10:00:00..2024-01-02T09:59:59"}) {
    auto w = monitor::ParseDriftWindow(bad, "reference");
    ASSERT_FALSE(w.ok()) << bad;
    EXPECT_EQ(w.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(w.status().message().find("reference window"), std::string::npos)
        << w.status().message();
  }
}

// --- config
// ---------------------------------------------------------------------------------------

TEST(DriftConfigTest, DefaultsAndValidation) {
  auto ok = Config::Parse("[drift]\npsi = 0.3\np_value = 0.05\nmin_effect = 0\ndataset_share = 1\n",
                          "t.toml");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_DOUBLE_EQ(ok->drift.psi, 0.3);
  EXPECT_DOUBLE_EQ(ok->drift.p_value, 0.05);
  EXPECT_DOUBLE_EQ(ok->drift.min_effect, 0);
  EXPECT_DOUBLE_EQ(ok->drift.dataset_share, 1);
  auto defaults = Config::Parse(DefaultConfigToml(), "default");
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  EXPECT_DOUBLE_EQ(defaults->drift.psi, 0.2);
  EXPECT_DOUBLE_EQ(defaults->drift.p_value, 0.01);
  EXPECT_DOUBLE_EQ(defaults->drift.min_effect, 0.1);
  EXPECT_DOUBLE_EQ(defaults->drift.dataset_share, 0.5);
  struct Bad {
    const char* toml;
    const char* key;
  };
  for (const Bad& b :
       {Bad{"psi = -1", "'psi'"}, Bad{"psi = 0", "'psi'"}, Bad{"psi = nan", "'psi'"},
        Bad{"p_value = 1.5", "'p_value'"}, Bad{"p_value = \"x\"", "'p_value'"},
        Bad{"min_effect = 2", "'min_effect'"}, Bad{"dataset_share = inf", "'dataset_share'"},
        Bad{"threshold = 0.2", "'threshold'"}}) {
    auto c = Config::Parse(fmt::format("[drift]\n{}\n", b.toml), "t.toml");
    ASSERT_FALSE(c.ok()) << b.toml;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find("[drift]"), std::string::npos) << c.status().message();
    EXPECT_NE(c.status().message().find(b.key), std::string::npos) << c.status().message();
  }
}

// --- table drift --------------------------------------------------------------------------------

class DriftTest : public LakeTest {
 protected:
  void SetUp() override {
    LakeTest::SetUp();
    AppendConfig(R"(
[tables.metrics]
time_column = "ts"
retention_days = 0

[[tables.metrics.columns]]
name = "ts"
type = "timestamp"
required = true

[[tables.metrics.columns]]
name = "a"
type = "double"

[[tables.metrics.columns]]
name = "b"
type = "double"

[[tables.metrics.columns]]
name = "n"
type = "int64"

[[tables.metrics.columns]]
name = "cat"
type = "string"

[[tables.metrics.columns]]
name = "flag"
type = "bool"

[[tables.metrics.columns]]
name = "note"
type = "string"
)");
    // 2024-05-01..10: the reference; 2024-05-11..20: the current window, where `a` moves up by
    // one standard deviation and `cat` swaps the shares of x and z. Everything else is drawn
    // from the same distributions (fresh draws), `b` missing in 10% of the rows on both sides.
    std::mt19937_64 rng(20240501);
    std::normal_distribution<double> normal(0, 1);
    std::uniform_real_distribution<double> unit(0, 1);
    std::string csv = "ts,a,b,n,cat,flag,note\n";
    for (int window = 0; window < 2; ++window) {
      for (int i = 0; i < kRowsPerWindow; ++i) {
        int day = 1 + window * 10 + i % 10;
        double a = normal(rng) + (window == 1 ? 1.0 : 0.0);
        double b = 50 + 10 * normal(rng);
        bool b_missing = unit(rng) < 0.1;
        int64_t n = static_cast<int64_t>(unit(rng) * 100);
        double u = unit(rng);
        const char* cat = window == 0 ? (u < 0.5   ? "x"
                                         : u < 0.8 ? "y"
                                                   : "z")
                                      : (u < 0.2   ? "x"
                                         : u < 0.5 ? "y"
                                                   : "z");
        bool flag = unit(rng) < 0.3;
        const char* note = unit(rng) < 0.5 ? "alpha" : "beta";
        csv += fmt::format("2024-05-{:02} {:02}:{:02}:00,{},{},{},{},{},{}\n", day, i % 24, i % 60,
                           a, b_missing ? "" : fmt::format("{}", b), n, cat,
                           flag ? "true" : "false", note);
      }
    }
    auto r = IngestFiles("metrics", {dir_.WriteFile("metrics.csv", csv)});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    lake_ = Open(false);
    auto engine = sql::QueryEngine::Open(*lake_, 1);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(*engine);
  }

  Result<DriftReport> Drift(const std::string& reference, const std::string& current,
                            std::vector<std::string> columns = {}) {
    return monitor::TableDrift(*engine_, DriftRequest{.table = "metrics",
                                                      .reference = reference,
                                                      .current = current,
                                                      .columns = std::move(columns)});
  }

  static std::set<std::string> Drifted(const DriftReport& r) {
    std::set<std::string> out;
    for (const auto& c : r.columns) {
      if (c.drifted) out.insert(c.column);
    }
    return out;
  }

  static constexpr int kRowsPerWindow = 5000;
  std::unique_ptr<lake::Lake> lake_;
  std::unique_ptr<sql::QueryEngine> engine_;
};

TEST_F(DriftTest, InjectedShiftFlagsThoseColumnsAndOnlyThose) {
  auto r = Drift("2024-05-01..2024-05-10", "2024-05-11..2024-05-20");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->reference_rows, kRowsPerWindow);
  EXPECT_EQ(r->current_rows, kRowsPerWindow);
  // The time column is skipped; the rest are compared, each as its kind.
  ASSERT_EQ(r->columns.size(), 6u);
  std::map<std::string, std::string> kinds;
  for (const auto& c : r->columns) kinds[c.column] = c.kind;
  EXPECT_EQ(kinds, (std::map<std::string, std::string>{{"a", "numeric"},
                                                       {"b", "numeric"},
                                                       {"n", "numeric"},
                                                       {"cat", "categorical"},
                                                       {"flag", "categorical"},
                                                       {"note", "categorical"}}));
  EXPECT_EQ(Drifted(*r), (std::set<std::string>{"a", "cat"})) << r->ToText();
  for (const auto& c : r->columns) {
    if (c.column == "a") {
      EXPECT_GT(*c.psi, 0.5) << r->ToText();
      EXPECT_GT(*c.statistic, 0.3);  // Phi(0.5) - Phi(-0.5) = 0.38 for a 1 sd shift
      EXPECT_LT(*c.p_value, 1e-10);
    }
    if (c.column == "b") {
      EXPECT_NEAR(c.reference_missing, 0.1, 0.02);
      EXPECT_NEAR(c.missing_change, 0.0, 0.03);
    }
    if (c.column == "cat") {
      EXPECT_LT(*c.p_value, 1e-10);
    }
    if (!c.drifted) {
      EXPECT_LT(*c.psi, 0.05) << c.column << "\n" << r->ToText();
    }
  }
  EXPECT_FALSE(r->dataset_drift);  // 2 of 6 is below the default share, 0.5
  Json j = r->ToJson();
  EXPECT_FALSE(j["dataset_drift"].get<bool>());
  for (const char* key :
       {"column", "kind", "psi", "statistic", "p_value", "js", "missing_change", "drifted"}) {
    EXPECT_TRUE(j["columns"][0].contains(key)) << key;
  }
  EXPECT_NE(r->ToText().find("no dataset drift: 2 of 6 column(s) drifted"), std::string::npos)
      << r->ToText();
}

TEST_F(DriftTest, TheSameWindowAgainstItselfFlagsNothing) {
  auto r = Drift("2024-05-01..2024-05-10", "2024-05-01..2024-05-10");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(Drifted(*r).empty()) << r->ToText();
  for (const auto& c : r->columns) {
    EXPECT_NEAR(*c.psi, 0, 1e-12) << c.column;
    EXPECT_NEAR(*c.statistic, 0, 1e-12) << c.column;
    EXPECT_NEAR(*c.js, 0, 1e-6) << c.column;
    EXPECT_NEAR(*c.p_value, 1, 1e-9) << c.column;
    EXPECT_DOUBLE_EQ(c.missing_change, 0) << c.column;
  }
  EXPECT_FALSE(r->dataset_drift);
}

TEST_F(DriftTest, ColumnsPickedByNameAndTimestampsComparedAsNumbers) {
  auto r = Drift("2024-05-01..2024-05-10", "2024-05-11T00:00:00..2024-05-20T23:59:59",
                 {"cat", "ts", "cat"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->columns.size(), 2u);
  EXPECT_EQ(r->columns[0].column, "cat");
  EXPECT_EQ(r->columns[1].column, "ts");
  EXPECT_EQ(r->columns[1].kind, "numeric");
  EXPECT_TRUE(r->columns[1].drifted);  // disjoint windows of the time itself
  EXPECT_TRUE(r->dataset_drift);
  EXPECT_EQ(r->current_rows, kRowsPerWindow);
}

TEST_F(DriftTest, ShiftedWindowsDriftTheDatasetAtALowerShare) {
  // engage init wrote the [drift] defaults: lower the share. The config is read when the lake
  // opens: reopen it.
  std::string toml = Scalar(fmt::format("SELECT content FROM read_text('{}')", home_.config()));
  size_t at = toml.find("dataset_share = 0.5");
  ASSERT_NE(at, std::string::npos);
  toml.replace(at, 19, "dataset_share = 0.3");
  {
    std::ofstream out(home_.config());
    out << toml;
  }
  auto l = Open(false);
  ASSERT_NE(l, nullptr);
  auto engine = sql::QueryEngine::Open(*l, 1);
  ASSERT_TRUE(engine.ok());
  auto r = monitor::TableDrift(**engine, DriftRequest{.table = "metrics",
                                                      .reference = "2024-05-01..2024-05-10",
                                                      .current = "2024-05-11..2024-05-20"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->dataset_drift);
  EXPECT_DOUBLE_EQ(r->thresholds.dataset_share, 0.3);
}

TEST_F(DriftTest, BadInputsNameWhatIsWrong) {
  auto unknown_table =
      monitor::TableDrift(*engine_, DriftRequest{.table = "nope",
                                                 .reference = "2024-05-01..2024-05-10",
                                                 .current = "2024-05-11..2024-05-20"});
  EXPECT_EQ(unknown_table.status().code(), StatusCode::kNotFound);
  EXPECT_NE(unknown_table.status().message().find("'nope'"), std::string::npos);

  auto unknown_column = Drift("2024-05-01..2024-05-10", "2024-05-11..2024-05-20", {"a", "zz"});
  EXPECT_EQ(unknown_column.status().code(), StatusCode::kNotFound);
  EXPECT_NE(unknown_column.status().message().find("no column 'zz'"), std::string::npos)
      << unknown_column.status().message();

  auto empty_current = Drift("2024-05-01..2024-05-10", "2023-01-01..2023-01-31");
  EXPECT_EQ(empty_current.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(empty_current.status().message().find("current window 2023-01-01..2023-01-31"),
            std::string::npos)
      << empty_current.status().message();

  auto empty_reference = Drift("2023-01-01..2023-01-31", "2024-05-01..2024-05-10");
  EXPECT_EQ(empty_reference.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(empty_reference.status().message().find("reference window 2023-01-01..2023-01-31"),
            std::string::npos)
      << empty_reference.status().message();

  for (const char* bad : {"2024-01-01", "a..b", "2024-05-10..2024-05-01"}) {
    auto r = Drift(bad, "2024-05-11..2024-05-20");
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("reference window"), std::string::npos);
  }
}

TEST_F(DriftTest, EngageAggregatesBinCountAndTakeQuantiles) {
  auto r = engine_->RunTrusted(
      "SELECT engage_bin_counts(x, '1,2,3'), to_json(map_values(histogram(x, [1.0, 2.0, 3.0]) "
      "FILTER (WHERE NOT isnan(x)))), engage_quantiles(x, 4) FROM (VALUES (0.5), (1.0), (1.5), "
      "(3.0), (7.0), (NULL), ('nan'::DOUBLE)) t(x)",
      "test");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->Str(0, 0).value_or(""), "[2,1,1,1]");
  EXPECT_EQ(r->Str(1, 0).value_or(""), "[2,1,1,1]");  // DuckDB's buckets, NaN left out
  // Sorted 0.5 1 1.5 3 7: positions ceil(p * 5) = 2, 3, 4.
  EXPECT_EQ(r->Str(2, 0).value_or(""), "[1,1.5,3]");
  auto cats = engine_->RunTrusted(
      "SELECT engage_category_counts(s, '[\"a\", \"b\"]') FROM (VALUES ('a'), ('b'), ('a'), "
      "('zz'), (NULL)) t(s)",
      "test");
  ASSERT_TRUE(cats.ok()) << cats.status().ToString();
  EXPECT_EQ(cats->Str(0, 0).value_or(""), "[2,1,1]");
  for (const char* bad : {"SELECT engage_bin_counts(x, '2,1') FROM (VALUES (1.0)) t(x)",
                          "SELECT engage_bin_counts(x, 'a') FROM (VALUES (1.0)) t(x)",
                          "SELECT engage_category_counts(s, '{}') FROM (VALUES ('a')) t(s)",
                          "SELECT engage_quantiles(x, 1) FROM (VALUES (1.0)) t(x)"}) {
    auto e = engine_->RunTrusted(bad, "test");
    EXPECT_FALSE(e.ok()) << bad;
  }
  auto empty = engine_->RunTrusted(
      "SELECT engage_bin_counts(x, ''), engage_quantiles(x, 10) FROM (VALUES (1.0), (NULL)) t(x)",
      "test");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->Str(0, 0).value_or(""), "[1]");
  EXPECT_EQ(empty->Str(1, 0).value_or(""), "[1,1,1,1,1,1,1,1,1]");
}

}  // namespace
}  // namespace engage::testing
