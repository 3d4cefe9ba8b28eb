#include "engage/core/config.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "testing/temp_dir.h"

namespace engage {
namespace {

// A valid one-table config that the cases below extend.
const char kMinimal[] = R"toml(
[tables.t]
time_column = "ts"
[[tables.t.columns]]
name = "ts"
type = "timestamp"
)toml";

Result<Config> ParseWith(const std::string& extra) {
  return Config::Parse(std::string(kMinimal) + extra, "test.toml");
}

// Expects `s` to be kInvalidArgument with every one of `parts` in its message.
void ExpectInvalid(const Status& s, const std::vector<std::string>& parts) {
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  for (const auto& p : parts) {
    EXPECT_NE(s.message().find(p), std::string::npos) << "'" << p << "' not in: " << s.message();
  }
}

Config DefaultConfig() {
  auto c = Config::Parse(DefaultConfigToml(), "default");
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? *c : Config{};
}

// ---------------------------------------------------------------------------------------------
// The default config

TEST(ConfigTest, DefaultConfigParses) {
  auto c = Config::Parse(DefaultConfigToml(), "default");
  ASSERT_OK(c);
}

TEST(ConfigTest, DefaultConfigDefinesExactlyEventsAndCustomers) {
  Config c = DefaultConfig();
  std::vector<std::string> names;
  for (const auto& [name, spec] : c.tables) {
    names.push_back(name);
    EXPECT_EQ(spec.name, name);
  }
  // predictions is built in: the table `engage score` writes.
  EXPECT_EQ(names, (std::vector<std::string>{"customers", "events", "predictions"}));
}

TEST(ConfigTest, DefaultEventsArePartitionedByEventTime) {
  Config c = DefaultConfig();
  auto events = c.Table("events");
  ASSERT_OK(events);
  EXPECT_EQ((*events)->time_column, "event_time");
  const ColumnSpec* tc = (*events)->FindColumn("event_time");
  ASSERT_NE(tc, nullptr);
  EXPECT_EQ(tc->type, ColumnType::kTimestamp);
  EXPECT_TRUE(tc->required);
  EXPECT_EQ((*events)->retention_days, 400);
}

TEST(ConfigTest, DefaultCustomersIsASnapshotTableWithATimeColumn) {
  Config c = DefaultConfig();
  auto customers = c.Table("customers");
  ASSERT_OK(customers);
  EXPECT_EQ((*customers)->time_column, "");  // partitioned by load date
  EXPECT_EQ((*customers)->primary_key, std::vector<std::string>{"customer_id"});
  EXPECT_EQ((*customers)->retention_days, 0);
  const ColumnSpec* signup = (*customers)->FindColumn("signup_time");
  ASSERT_NE(signup, nullptr);
  EXPECT_EQ(signup->type, ColumnType::kTimestamp);
}

TEST(ConfigTest, DefaultConfigCarriesValidationRules) {
  Config c = DefaultConfig();
  const TableSpec* events = *c.Table("events");
  const ColumnSpec* type = events->FindColumn("event_type");
  ASSERT_NE(type, nullptr);
  EXPECT_EQ(type->allowed.size(), 6u);
  EXPECT_EQ(type->allowed.front(), "session");
  const ColumnSpec* props = events->FindColumn("properties");
  ASSERT_NE(props, nullptr);
  EXPECT_EQ(props->max_length, 65536);
  const ColumnSpec* age = (*c.Table("customers"))->FindColumn("age");
  ASSERT_NE(age, nullptr);
  EXPECT_EQ(age->type, ColumnType::kInt64);
  EXPECT_EQ(age->min, 13.0);  // TOML integers are accepted for min/max
  EXPECT_EQ(age->max, 120.0);
}

TEST(ConfigTest, DefaultPricesAreAthenaListPrices) {
  Config c = DefaultConfig();
  EXPECT_EQ(c.prices.scan_usd_per_tb, 5.0);
  EXPECT_EQ(c.prices.min_bytes_per_query, 10000000);
  EXPECT_EQ(c.query.max_scan_bytes, 0);
  EXPECT_EQ(c.query.max_result_rows, 100000);
}

// ---------------------------------------------------------------------------------------------
// Parsing

TEST(ConfigTest, OmittedOptionsTakeTheirDefaults) {
  auto c = ParseWith("[[tables.t.columns]]\nname = \"a\"\n");
  ASSERT_OK(c);
  const TableSpec& t = c->tables.at("t");
  EXPECT_EQ(t.retention_days, 90);
  EXPECT_FALSE(t.require_partition_filter);
  EXPECT_EQ(t.min_time, "1990-01-01");
  EXPECT_EQ(t.max_future_days, 2);
  EXPECT_EQ(t.csv.delimiter, ",");
  EXPECT_TRUE(t.csv.header);
  EXPECT_EQ(t.csv.quote, "\"");
  EXPECT_EQ(t.csv.max_line_bytes, 2 * 1024 * 1024);
  const ColumnSpec* a = t.FindColumn("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->type, ColumnType::kString);
  EXPECT_EQ(a->source, "a");  // the source column defaults to the name
  EXPECT_FALSE(a->required);
  EXPECT_FALSE(a->min.has_value());
  EXPECT_FALSE(a->max_length.has_value());
}

TEST(ConfigTest, ColumnAndTableOptionsAreRead) {
  auto c = Config::Parse(R"toml(
[prices]
scan_usd_per_tb = 6.25
min_bytes_per_query = 0
[query]
max_scan_bytes = 1000
max_result_rows = 7
[tables.retail]
time_column = "day"
primary_key = ["invoice"]
retention_days = 0
require_partition_filter = true
min_time = "2009-01-01"
max_future_days = 5
[tables.retail.csv]
delimiter = "whitespace"
header = false
quote = "'"
max_line_bytes = 4096
[[tables.retail.columns]]
name = "invoice"
type = "string"
required = true
source = "column0"
allowed = ["a", "b"]
max_length = 12
[[tables.retail.columns]]
name = "day"
type = "date"
source = "column1"
format = "%Y%m%d"
[[tables.retail.columns]]
name = "price"
type = "double"
expr = "Quantity::DOUBLE * UnitPrice::DOUBLE"
min = -1.5
max = 10
)toml",
                         "retail.toml");
  ASSERT_OK(c);
  EXPECT_EQ(c->prices.scan_usd_per_tb, 6.25);
  EXPECT_EQ(c->prices.min_bytes_per_query, 0);
  EXPECT_EQ(c->query.max_scan_bytes, 1000);
  EXPECT_EQ(c->query.max_result_rows, 7);
  const TableSpec& t = c->tables.at("retail");
  EXPECT_EQ(t.time_column, "day");
  EXPECT_EQ(t.primary_key, std::vector<std::string>{"invoice"});
  EXPECT_EQ(t.retention_days, 0);
  EXPECT_TRUE(t.require_partition_filter);
  EXPECT_EQ(t.min_time, "2009-01-01");
  EXPECT_EQ(t.max_future_days, 5);
  EXPECT_EQ(t.csv.delimiter, "whitespace");
  EXPECT_FALSE(t.csv.header);
  EXPECT_EQ(t.csv.quote, "'");
  EXPECT_EQ(t.csv.max_line_bytes, 4096);
  ASSERT_EQ(t.columns.size(), 3u);
  EXPECT_EQ(t.columns[0].name, "invoice");  // declaration order is kept
  EXPECT_EQ(t.columns[0].source, "column0");
  EXPECT_TRUE(t.columns[0].required);
  EXPECT_EQ(t.columns[0].allowed, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(t.columns[0].max_length, 12);
  EXPECT_EQ(t.columns[1].type, ColumnType::kDate);
  EXPECT_EQ(t.columns[1].format, "%Y%m%d");
  EXPECT_EQ(t.columns[2].type, ColumnType::kDouble);
  EXPECT_EQ(t.columns[2].expr, "Quantity::DOUBLE * UnitPrice::DOUBLE");
  EXPECT_EQ(t.columns[2].min, -1.5);
  EXPECT_EQ(t.columns[2].max, 10.0);
}

TEST(ConfigTest, EveryTypeNameParses) {
  for (ColumnType type : {ColumnType::kString, ColumnType::kInt64, ColumnType::kDouble,
                          ColumnType::kBool, ColumnType::kTimestamp, ColumnType::kDate}) {
    std::string name(ColumnTypeName(type));
    auto c = ParseWith("[[tables.t.columns]]\nname = \"a\"\ntype = \"" + name + "\"\n");
    ASSERT_OK(c);
    EXPECT_EQ(c->tables.at("t").FindColumn("a")->type, type) << name;
  }
}

TEST(ConfigTest, TypesHaveSqlNames) {
  EXPECT_EQ(ColumnTypeSql(ColumnType::kString), "VARCHAR");
  EXPECT_EQ(ColumnTypeSql(ColumnType::kInt64), "BIGINT");
  EXPECT_EQ(ColumnTypeSql(ColumnType::kDouble), "DOUBLE");
  EXPECT_EQ(ColumnTypeSql(ColumnType::kBool), "BOOLEAN");
  EXPECT_EQ(ColumnTypeSql(ColumnType::kTimestamp), "TIMESTAMP");
  EXPECT_EQ(ColumnTypeSql(ColumnType::kDate), "DATE");
}

TEST(ConfigTest, DateTimeColumnIsAccepted) {
  auto c = Config::Parse(
      "[tables.t]\ntime_column = \"d\"\n[[tables.t.columns]]\nname = \"d\"\n"
      "type = \"date\"\n",
      "f.toml");
  ASSERT_OK(c);
  EXPECT_EQ(c->tables.at("t").time_column, "d");
}

TEST(ConfigTest, EmptyConfigHasOnlyTheBuiltInTableAndDefaultPrices) {
  auto c = Config::Parse("", "empty.toml");
  ASSERT_OK(c);
  ASSERT_EQ(c->tables.size(), 1u);  // only the built-in predictions table
  EXPECT_EQ(c->tables.at("predictions").time_column, "scored_at");
  EXPECT_EQ(c->prices.scan_usd_per_tb, 5.0);
}

TEST(ConfigTest, FindColumnReturnsNullForAnUnknownColumn) {
  auto c = ParseWith("");
  ASSERT_OK(c);
  EXPECT_NE(c->tables.at("t").FindColumn("ts"), nullptr);
  EXPECT_EQ(c->tables.at("t").FindColumn("nope"), nullptr);
  EXPECT_EQ(c->tables.at("t").FindColumn(""), nullptr);
}

// ---------------------------------------------------------------------------------------------
// Mistakes are rejected with kInvalidArgument naming the origin, table and key

TEST(ConfigTest, UnknownTopLevelKeyIsRejected) {
  ExpectInvalid(ParseWith("\n[bogus]\nx = 1\n").status(), {"test.toml", "unknown key 'bogus'"});
}

TEST(ConfigTest, UnknownTableKeyIsRejected) {
  ExpectInvalid(Config::Parse("[tables.t]\npartition_by = \"x\"\n", "f.toml").status(),
                {"f.toml", "table 't'", "unknown key 'partition_by'"});
}

TEST(ConfigTest, UnknownColumnKeyIsRejected) {
  ExpectInvalid(ParseWith("\n[[tables.t.columns]]\nname = \"a\"\ncolour = \"red\"\n").status(),
                {"test.toml", "table 't'", "unknown key 'colour'"});
}

TEST(ConfigTest, UnknownPricesKeyIsRejected) {
  ExpectInvalid(Config::Parse("[prices]\nscan_usd_per_gb = 1.0\n", "f.toml").status(),
                {"[prices]", "unknown key 'scan_usd_per_gb'"});
}

TEST(ConfigTest, UnknownQueryKeyIsRejected) {
  ExpectInvalid(Config::Parse("[query]\ntimeout = 1\n", "f.toml").status(),
                {"[query]", "unknown key 'timeout'"});
}

TEST(ConfigTest, UnknownCsvKeyIsRejected) {
  ExpectInvalid(ParseWith("\n[tables.t.csv]\nseparator = \";\"\n").status(),
                {"table 't'", "[csv]", "unknown key 'separator'"});
}

TEST(ConfigTest, UnknownTypeNameIsRejected) {
  ExpectInvalid(ParseWith("\n[[tables.t.columns]]\nname = \"a\"\ntype = \"decimal\"\n").status(),
                {"table 't'", "'a'", "unknown type 'decimal'"});
}

TEST(ConfigTest, TimeColumnNamingANonTimeColumnIsRejected) {
  Status s = Config::Parse("[tables.t]\ntime_column = \"x\"\n[[tables.t.columns]]\nname = \"x\"\n",
                           "f.toml")
                 .status();
  ExpectInvalid(s, {"f.toml", "table 't'", "time_column"});
}

TEST(ConfigTest, TimeColumnNamingAMissingColumnIsRejected) {
  Status s =
      Config::Parse("[tables.t]\ntime_column = \"when\"\n[[tables.t.columns]]\nname = \"x\"\n",
                    "f.toml")
          .status();
  ExpectInvalid(s, {"table 't'", "time_column"});
}

TEST(ConfigTest, DuplicateColumnIsRejected) {
  ExpectInvalid(ParseWith("\n[[tables.t.columns]]\nname = \"ts\"\n").status(),
                {"table 't'", "column 'ts'", "defined twice"});
}

TEST(ConfigTest, ColumnNamedDtIsRejected) {
  ExpectInvalid(ParseWith("\n[[tables.t.columns]]\nname = \"dt\"\n").status(),
                {"table 't'", "column 'dt'", "reserved partition column"});
}

TEST(ConfigTest, InvalidColumnNameIsRejected) {
  ExpectInvalid(ParseWith("\n[[tables.t.columns]]\nname = \"Bad Name\"\n").status(),
                {"table 't'", "column #2", "not a valid identifier"});
}

TEST(ConfigTest, ColumnWithoutNameIsRejected) {
  ExpectInvalid(ParseWith("\n[[tables.t.columns]]\ntype = \"int64\"\n").status(),
                {"table 't'", "column #2", "'name' is missing"});
}

TEST(ConfigTest, InvalidTableNameIsRejected) {
  ExpectInvalid(
      Config::Parse("[tables.Events]\n[[tables.Events.columns]]\nname = \"a\"\n", "f.toml")
          .status(),
      {"table 'Events'", "not a valid table name"});
}

TEST(ConfigTest, TableWithoutColumnsIsRejected) {
  ExpectInvalid(Config::Parse("[tables.t]\nretention_days = 3\n", "f.toml").status(),
                {"table 't'", "[[columns]]"});
}

TEST(ConfigTest, PrimaryKeyNamingAnUnknownColumnIsRejected) {
  ExpectInvalid(
      Config::Parse("[tables.t]\nprimary_key = [\"id\"]\n[[tables.t.columns]]\nname = \"x\"\n",
                    "f.toml")
          .status(),
      {"table 't'", "primary_key"});
}

TEST(ConfigTest, NegativeRetentionIsRejected) {
  ExpectInvalid(
      Config::Parse("[tables.t]\nretention_days = -1\n[[tables.t.columns]]\nname = \"x\"\n",
                    "f.toml")
          .status(),
      {"table 't'", "retention_days"});
}

TEST(ConfigTest, NonStringAllowedValueIsRejected) {
  ExpectInvalid(ParseWith("\n[[tables.t.columns]]\nname = \"a\"\nallowed = [\"x\", 1]\n").status(),
                {"table 't'", "'a'", "'allowed' must hold strings"});
}

TEST(ConfigTest, MultiCharacterDelimiterIsRejected) {
  ExpectInvalid(ParseWith("\n[tables.t.csv]\ndelimiter = \";;\"\n").status(),
                {"table 't'", "[csv]", "delimiter"});
}

TEST(ConfigTest, EmptyDelimiterIsRejected) {
  ExpectInvalid(ParseWith("\n[tables.t.csv]\ndelimiter = \"\"\n").status(),
                {"table 't'", "delimiter"});
}

TEST(ConfigTest, SingleCharacterDelimiterIsAccepted) {
  auto c = ParseWith("\n[tables.t.csv]\ndelimiter = \"\\t\"\n");
  ASSERT_OK(c);
  EXPECT_EQ(c->tables.at("t").csv.delimiter, "\t");
}

TEST(ConfigTest, TableThatIsNotATableIsRejected) {
  ExpectInvalid(Config::Parse("[tables]\nt = 1\n", "f.toml").status(),
                {"f.toml", "tables.t must be a table"});
}

TEST(ConfigTest, SyntaxErrorReportsOriginAndLine) {
  Status s = Config::Parse("[prices]\nscan_usd_per_tb = = 5\n", "bad.toml").status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("bad.toml:2:"), std::string::npos) << s.message();
}

// A value of the wrong TOML type is silently replaced by the default today (e.g. a quoted
// retention silently becomes 90 days, `required = "yes"` silently becomes false).
// Enable when config.cc's Get<T> rejects mistyped values.
TEST(ConfigTest, MistypedValueIsRejected) {
  ExpectInvalid(
      Config::Parse("[tables.t]\nretention_days = \"30\"\n[[tables.t.columns]]\nname = \"x\"\n",
                    "f.toml")
          .status(),
      {"table 't'", "retention_days"});
  ExpectInvalid(ParseWith("\n[[tables.t.columns]]\nname = \"a\"\nrequired = \"yes\"\n").status(),
                {"table 't'", "required"});
  ExpectInvalid(ParseWith("\n[[tables.t.columns]]\nname = \"a\"\ntype = 5\n").status(),
                {"table 't'", "type"});
}

TEST(ConfigTest, FlowExecutionLimitsDefaultToAwsQuotas) {
  Config c = DefaultConfig();
  EXPECT_EQ(c.flow.max_history_events, 25000);
  EXPECT_EQ(c.flow.max_execution_seconds, 31536000);
  EXPECT_EQ(c.flow.max_payload_bytes, 262144);
}

TEST(ConfigTest, FlowExecutionLimitsAreRead) {
  auto c = Config::Parse(
      "[flow]\nmax_history_events = 100\nmax_execution_seconds = 60\nmax_payload_bytes = 1024\n",
      "f.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->flow.max_history_events, 100);
  EXPECT_EQ(c->flow.max_execution_seconds, 60);
  EXPECT_EQ(c->flow.max_payload_bytes, 1024);
}

TEST(ConfigTest, FlowExecutionLimitsOutOfRangeAreRejected) {
  ExpectInvalid(Config::Parse("[flow]\nmax_history_events = 0\n", "f.toml").status(),
                {"[flow]", "max_history_events"});
  ExpectInvalid(Config::Parse("[flow]\nmax_execution_seconds = -5\n", "f.toml").status(),
                {"[flow]", "max_execution_seconds"});
  ExpectInvalid(
      Config::Parse("[flow]\nmax_execution_seconds = 9223372036854775807\n", "f.toml").status(),
      {"[flow]", "max_execution_seconds"});
  ExpectInvalid(Config::Parse("[flow]\nmax_payload_bytes = \"1k\"\n", "f.toml").status(),
                {"[flow]", "max_payload_bytes"});
}

// ---------------------------------------------------------------------------------------------
// Lookup and loading

TEST(ConfigTest, TableFindsADefinedTable) {
  Config c = DefaultConfig();
  auto t = c.Table("events");
  ASSERT_OK(t);
  EXPECT_EQ((*t)->name, "events");
}

TEST(ConfigTest, UnknownTableIsNotFoundListingTheKnownOnes) {
  Config c = DefaultConfig();
  auto t = c.Table("clicks");
  EXPECT_STATUS_CODE(t, StatusCode::kNotFound);
  EXPECT_NE(t.status().message().find("'clicks'"), std::string::npos) << t.status().message();
  EXPECT_NE(t.status().message().find("customers, events"), std::string::npos)
      << t.status().message();
}

TEST(ConfigTest, UnknownTableWithNoTablesSaysNone) {
  Config c;
  auto t = c.Table("events");
  EXPECT_STATUS_CODE(t, StatusCode::kNotFound);
  EXPECT_NE(t.status().message().find("none"), std::string::npos) << t.status().message();
}

TEST(ConfigTest, LoadReadsAFile) {
  testing::TempDir dir;
  std::string path = dir.WriteFile("engage.toml", DefaultConfigToml());
  auto c = Config::Load(path);
  ASSERT_OK(c);
  EXPECT_EQ(c->tables.size(), 3u);  // with the built-in predictions table
}

TEST(ConfigTest, LoadNamesTheFileInErrors) {
  testing::TempDir dir;
  std::string path = dir.WriteFile("engage.toml", "[bogus]\n");
  Status s = Config::Load(path).status();
  ExpectInvalid(s, {path, "unknown key 'bogus'"});
}

TEST(ConfigTest, LoadOfAMissingFileIsNotFoundSuggestingInit) {
  testing::TempDir dir;
  Status s = Config::Load(dir.path() + "/engage.toml").status();
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  EXPECT_NE(s.message().find(dir.path() + "/engage.toml"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("engage init"), std::string::npos) << s.message();
}

// ---------------------------------------------------------------------------------------------
// Cost

const double kTb = std::pow(2.0, 40);

TEST(CostTest, ZeroBytesAreBilledAsTheTenMegabyteMinimum) {
  Prices p;
  EXPECT_DOUBLE_EQ(CostUsd(p, 0), 10e6 / kTb * 5.0);
}

TEST(CostTest, SmallScansAreBilledAsTheMinimum) {
  Prices p;
  EXPECT_DOUBLE_EQ(CostUsd(p, 1), CostUsd(p, 0));
  EXPECT_DOUBLE_EQ(CostUsd(p, 10000000), CostUsd(p, 0));
}

TEST(CostTest, OneTebibyteCostsFiveDollars) {
  Prices p;
  // 2^40 bytes round up to a whole (decimal) MB, so slightly above $5.
  EXPECT_NEAR(CostUsd(p, int64_t{1} << 40), 5.0, 1e-5);
  EXPECT_DOUBLE_EQ(CostUsd(p, int64_t{1} << 40), 1099512000000.0 / kTb * 5.0);
}

TEST(CostTest, PartialMegabytesRoundUp) {
  Prices p;
  EXPECT_DOUBLE_EQ(CostUsd(p, 20000001), 21e6 / kTb * 5.0);
  EXPECT_DOUBLE_EQ(CostUsd(p, 20000000), 20e6 / kTb * 5.0);
}

TEST(CostTest, PriceSheetIsApplied) {
  Prices p;
  p.scan_usd_per_tb = 10.0;
  p.min_bytes_per_query = 0;
  EXPECT_DOUBLE_EQ(CostUsd(p, 0), 0.0);
  EXPECT_DOUBLE_EQ(CostUsd(p, 1), 1e6 / kTb * 10.0);
}

// ---------------------------------------------------------------------------------------------
// Identifiers

TEST(IdentifierTest, LowercaseNamesAreValid) {
  for (const char* name : {"events", "a", "_", "_x", "a1_b2", "customer_id"}) {
    EXPECT_TRUE(IsValidIdentifier(name)) << name;
  }
  EXPECT_TRUE(IsValidIdentifier(std::string(63, 'a')));
}

TEST(IdentifierTest, OtherNamesAreInvalid) {
  for (const char* name : {"", "1a", "Events", "eVents", "a-b", "a b", "a.b", "a;", "\xc3\xa9"}) {
    EXPECT_FALSE(IsValidIdentifier(name)) << name;
  }
  EXPECT_FALSE(IsValidIdentifier(std::string(64, 'a')));
}

TEST(ConfigTest, EngagementAndModelsSectionsAreParsedAndChecked) {
  auto c = Config::Parse(R"toml(
[engagement]
qualifying_types = ["purchase", "renewal"]
horizon_days = 14
windows_days = [7, 28]
segment_thresholds = [0.5, 0.2]
segment_names = ["hot", "warm", "cold"]
[[engagement.features]]
name = "tickets"
sql = "SELECT customer_id, count(*) AS value FROM {events} GROUP BY 1"
[models]
min_quality = 0.7
min_improvement = 0.005
)toml",
                         "e.toml");
  ASSERT_OK(c);
  EXPECT_EQ(c->engagement.qualifying_types, (std::vector<std::string>{"purchase", "renewal"}));
  EXPECT_EQ(c->engagement.horizon_days, 14);
  EXPECT_EQ(c->engagement.windows_days, (std::vector<int>{7, 28}));
  EXPECT_EQ(c->engagement.segment_names.size(), 3u);
  ASSERT_EQ(c->engagement.sql_features.size(), 1u);
  EXPECT_EQ(c->engagement.sql_features[0].name, "tickets");
  EXPECT_EQ(c->models.min_quality, 0.7);
  // Defaults when the sections are absent.
  auto d = Config::Parse("", "d.toml");
  EXPECT_EQ(d->engagement.horizon_days, 30);
  EXPECT_EQ(d->engagement.qualifying_types, (std::vector<std::string>{"purchase"}));
  EXPECT_EQ(d->models.promotion_metric, "auc");
  // Errors name the section and the key.
  for (const char* bad : {
           "[engagement]\nhorizon_days = 0",
           "[engagement]\nhorizon_days = \"30\"",
           "[engagement]\nqualifying_types = []",
           "[engagement]\nwindows_days = [7, -1]",
           "[engagement]\nsegment_thresholds = [0.2, 0.5]",
           "[engagement]\nsegment_names = [\"a\"]",
           "[engagement]\nnope = 1",
           "[[engagement.features]]\nname = \"x\"\nsql = \"SELECT 1\"",
           "[[engagement.features]]\nname = \"Bad Name\"\nsql = \"{events}\"",
           "[models]\nmin_quality = \"high\"",
           "[models]\npromotion_metric = \"accuracy\"",
       }) {
    auto r = Config::Parse(bad, "bad.toml");
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("bad.toml"), std::string::npos) << r.status().message();
  }
}

TEST(ConfigTest, HealthMinAucIsAFiniteShareNamedInErrors) {
  auto d = Config::Parse("", "d.toml");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->models.health_min_auc, 0.6);
  auto c = Config::Parse("[models]\nhealth_min_auc = 0.72\n", "c.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->models.health_min_auc, 0.72);
  auto whole = Config::Parse("[models]\nhealth_min_auc = 1\n", "c.toml");
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_EQ(whole->models.health_min_auc, 1.0);
  for (const char* bad : {"[models]\nhealth_min_auc = nan\n", "[models]\nhealth_min_auc = inf\n",
                          "[models]\nhealth_min_auc = -0.1\n", "[models]\nhealth_min_auc = 1.5\n",
                          "[models]\nhealth_min_auc = \"0.6\"\n"}) {
    auto r = Config::Parse(bad, "bad.toml");
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("health_min_auc"), std::string::npos)
        << r.status().message();
    EXPECT_NE(r.status().message().find("bad.toml [models]"), std::string::npos)
        << r.status().message();
  }
}

TEST(ConfigTest, QueryTimeoutAndMemoryLimitAreRead) {
  auto d = Config::Parse(DefaultConfigToml(), "default");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_FALSE(d->query.timeout_seconds.has_value());  // each caller's own default
  EXPECT_EQ(d->query.memory_limit, "4GB");
  auto c = Config::Parse("[query]\ntimeout_seconds = 5\nmemory_limit = \"512MB\"\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->query.timeout_seconds, 5);
  EXPECT_EQ(c->query.memory_limit, "512MB");
  for (const char* bad :
       {"[query]\ntimeout_seconds = -1\n", "[query]\ntimeout_seconds = 1e9\n",
        "[query]\ntimeout_seconds = 99999999999\n", "[query]\nmemory_limit = \"lots\"\n",
        "[query]\nmemory_limit = 4\n", "[query]\nmemory_limit = \"GB\"\n"}) {
    auto r = Config::Parse(bad, "t.toml");
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("query"), std::string::npos) << bad;
    }
  }
}

TEST(ConfigTest, NegativeLimitsAndPricesAreRefused) {
  for (const char* bad :
       {"[query]\nmax_result_rows = -7\n", "[query]\nmax_result_rows = 0\n",
        "[query]\nmax_scan_bytes = -1\n", "[prices]\nscan_usd_per_tb = -5.0\n",
        "[prices]\nmin_bytes_per_query = -1\n", "[prices]\nscan_usd_per_tb = nan\n"}) {
    auto r = Config::Parse(bad, "t.toml");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("t.toml"), std::string::npos) << r.status().message();
  }
  auto ok = Config::Parse("[query]\nmax_result_rows = 1\nmax_scan_bytes = 0\n", "t.toml");
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
}

TEST(ConfigTest, FlowInputDirsAreRead) {
  auto c = ParseWith("\n[flow]\ninput_dirs = [\"/srv/incoming\", \"data\"]\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->flow.input_dirs, (std::vector<std::string>{"/srv/incoming", "data"}));
  auto none = ParseWith("");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->flow.input_dirs.empty());
}

TEST(ConfigTest, FlowInputDirsMustBeStrings) {
  ExpectInvalid(ParseWith("\n[flow]\ninput_dirs = \"/srv\"\n").status(),
                {"[flow]", "'input_dirs' must be an array of strings"});
  ExpectInvalid(ParseWith("\n[flow]\ninput_dirs = [1]\n").status(),
                {"'input_dirs' must be an array of strings"});
  ExpectInvalid(ParseWith("\n[flow]\ninput_dirs = [\"\"]\n").status(), {"empty path"});
}

// [[tables.T.checks]]: each kind with what it needs; a bad one names the table, check and key.
TEST(ConfigTest, ChecksAreParsedAndCheckedAtLoad) {
  auto c = ParseWith(R"toml(
[[tables.t.columns]]
name = "x"
type = "double"
[[tables.t.checks]]
type = "not_null"
columns = ["ts", "x"]
[[tables.t.checks]]
type = "range"
column = "x"
min = 0
severity = "warning"
[[tables.t.checks]]
type = "freshness"
max_age_hours = 24
[[tables.t.checks]]
type = "sql"
name = "custom"
sql = "SELECT * FROM t WHERE x > 1"
)toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const auto& checks = c->tables.at("t").checks;
  ASSERT_EQ(checks.size(), 4u);
  EXPECT_EQ(checks[0].name, "not_null_ts_x");
  EXPECT_EQ(checks[0].kind, CheckKind::kNotNull);
  EXPECT_FALSE(checks[1].error);
  EXPECT_EQ(*checks[1].min, 0);
  EXPECT_EQ(checks[2].name, "freshness");
  EXPECT_EQ(checks[3].name, "custom");
  const std::string col = "[[tables.t.columns]]\nname = \"x\"\ntype = \"double\"\n";
  ExpectInvalid(ParseWith(col + "[[tables.t.checks]]\ntype = \"nope\"\n").status(),
                {"table 't' check #1", "'type' must be one of", "nope"});
  ExpectInvalid(
      ParseWith(col + "[[tables.t.checks]]\ntype = \"not_null\"\ncolumn = \"y\"\n").status(),
      {"check #1", "unknown column 'y'"});
  ExpectInvalid(ParseWith(col + "[[tables.t.checks]]\ntype = \"range\"\ncolumn = \"x\"\n").status(),
                {"needs 'min' or 'max'"});
  ExpectInvalid(
      ParseWith(col +
                "[[tables.t.checks]]\ntype = \"not_null\"\ncolumn = \"x\"\nseverity = \"fatal\"\n")
          .status(),
      {"'severity' must be"});
  ExpectInvalid(ParseWith(col + "[[tables.t.checks]]\ntype = \"not_null\"\ncolumn = \"x\"\n"
                                "[[tables.t.checks]]\ntype = \"not_null\"\ncolumn = \"x\"\n")
                    .status(),
                {"check #2", "named 'not_null_x'"});
  ExpectInvalid(
      ParseWith(col + "[[tables.t.checks]]\ntype = \"freshness\"\nmax_age_hours = \"1\"\n")
          .status(),
      {"'max_age_hours' must be a number"});
  ExpectInvalid(ParseWith(col + "[[tables.t.checks]]\ntype = \"sql\"\nbogus = 1\n").status(),
                {"unknown key 'bogus'"});
  ExpectInvalid(
      ParseWith(col + "[[tables.t.checks]]\ntype = \"range\"\ncolumn = \"x\"\nmax = nan\n")
          .status(),
      {"must be finite"});
}

}  // namespace
}  // namespace engage
