// Distributed Map's ItemReader, ItemBatcher and ResultWriter over the local S3 stand-in (a
// directory per bucket).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "engage/core/fs.h"
#include "engage/flow/engine.h"
#include "testing/temp_dir.h"

namespace engage::flow {
namespace {

namespace fs = std::filesystem;

std::shared_ptr<const StateMachine> Parse(const std::string& text,
                                          std::vector<Diagnostic>* problems = nullptr) {
  std::vector<Diagnostic> local;
  auto sm = ParseDefinition(Json::parse(text), problems != nullptr ? problems : &local);
  if (problems == nullptr) {
    EXPECT_NE(sm, nullptr) << (local.empty() ? "" : local[0].ToString());
  }
  return sm;
}

// A distributed Map whose processor passes each item through, with the given extra fields.
std::string MapMachine(const std::string& extra, const std::string& processor_state = "") {
  std::string proc = processor_state.empty() ? R"({"Type":"Pass","End":true})" : processor_state;
  return R"({"StartAt":"M","States":{"M":{"Type":"Map",)" + extra +
         R"(,"ItemProcessor":{"ProcessorConfig":{"Mode":"DISTRIBUTED","ExecutionType":"STANDARD"},
          "StartAt":"P","States":{"P":)" +
         proc + R"(}},"End":true}}})";
}

class MapIoTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(PosixFileSystem::Default()->CreateDirs(bucket_)); }

  void Put(const std::string& key, const std::string& data) {
    fs::path p = fs::path(bucket_) / key;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << data;
  }

  ExecutionResult Run(const StateMachine& sm, const Json& input = Json::object()) {
    EngineOptions o;
    o.clock = &clock_;
    o.sleep = [this](int64_t us) { clock_.AdvanceMicros(us); };
    o.bucket_dir = [this](const std::string& bucket, bool) -> Result<std::string> {
      if (bucket != "data") return NotFoundError("bucket '" + bucket + "' is not mapped");
      return bucket_;
    };
    Engine engine(o);
    return engine.Run(sm, input, "test");
  }

  testing::TempDir dir_;
  std::string bucket_ = dir_.path() + "/data";
  FakeClock clock_{1700000000LL * 1000000};
};

TEST_F(MapIoTest, ReadsJsonArrayObject) {
  Put("in/items.json", R"([{"id":1},{"id":2},{"id":3}])");
  auto sm = Parse(MapMachine(R"("ItemReader":{"Resource":"arn:aws:states:::s3:getObject",
      "ReaderConfig":{"InputType":"JSON"},"Parameters":{"Bucket":"data","Key":"in/items.json"}})"));
  ExecutionResult r = Run(*sm);
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.ToJson();
  EXPECT_EQ(r.output, Json::parse(R"([{"id":1},{"id":2},{"id":3}])"));
}

TEST_F(MapIoTest, ReadsJsonLinesWithMaxItems) {
  Put("in/items.jsonl", "{\"id\":1}\n\n{\"id\":2}\r\n{\"id\":3}\n");
  auto sm = Parse(MapMachine(R"("ItemReader":{"Resource":"arn:aws:states:::s3:getObject",
      "ReaderConfig":{"InputType":"JSONL","MaxItems":2},
      "Parameters":{"Bucket":"data","Key.$":"$.key"}})"));
  ExecutionResult r = Run(*sm, Json{{"key", "in/items.jsonl"}});
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.ToJson();
  EXPECT_EQ(r.output, Json::parse(R"([{"id":1},{"id":2}])"));
}

TEST_F(MapIoTest, ReadsCsvWithHeaderRowAsStrings) {
  Put("c.csv", "customer_id,amount,note\r\nc1,10.5,\"a, quoted\"\"x\"\"\"\nc2,3,\n");
  auto sm = Parse(MapMachine(R"("ItemReader":{"Resource":"arn:aws:states:::s3:getObject",
      "ReaderConfig":{"InputType":"CSV","CSVHeaderLocation":"FIRST_ROW"},
      "Parameters":{"Bucket":"data","Key":"c.csv"}})"));
  ExecutionResult r = Run(*sm);
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.ToJson();
  EXPECT_EQ(r.output, Json::parse(R"([{"customer_id":"c1","amount":"10.5","note":"a, quoted\"x\""},
                                     {"customer_id":"c2","amount":"3","note":""}])"));
}

TEST_F(MapIoTest, ReadsCsvWithGivenHeadersAndPipeDelimiter) {
  Put("p.csv", "c1|1\nc2|2\n");
  auto sm = Parse(MapMachine(R"("ItemReader":{"Resource":"arn:aws:states:::s3:getObject",
      "ReaderConfig":{"InputType":"CSV","CSVHeaderLocation":"GIVEN","CSVHeaders":["id","n"],
                      "CSVDelimiter":"PIPE"},
      "Parameters":{"Bucket":"data","Key":"p.csv"}})"));
  ExecutionResult r = Run(*sm);
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.ToJson();
  EXPECT_EQ(r.output, Json::parse(R"([{"id":"c1","n":"1"},{"id":"c2","n":"2"}])"));
}

TEST_F(MapIoTest, CsvRowWithTooManyFieldsFailsNamingTheLine) {
  Put("bad.csv", "a,b\n1,2\n1,2,3\n");
  auto sm = Parse(MapMachine(R"("ItemReader":{"Resource":"arn:aws:states:::s3:getObject",
      "ReaderConfig":{"InputType":"CSV","CSVHeaderLocation":"FIRST_ROW"},
      "Parameters":{"Bucket":"data","Key":"bad.csv"}})"));
  ExecutionResult r = Run(*sm);
  ASSERT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.error, "States.ItemReaderFailed");
  EXPECT_NE(r.cause->find("s3://data/bad.csv: line 3"), std::string::npos) << *r.cause;
}

TEST_F(MapIoTest, ListsObjectsUnderPrefix) {
  Put("logs/2024/a.txt", "aa");
  Put("logs/2024/b.txt", "bbb");
  Put("other/c.txt", "c");
  auto sm = Parse(MapMachine(
      R"("ItemReader":{"Resource":"arn:aws:states:::s3:listObjectsV2",
        "Parameters":{"Bucket":"data","Prefix":"logs/"}},
        "ItemSelector":{"key.$":"$$.Map.Item.Value.Key","size.$":"$$.Map.Item.Value.Size"})"));
  ExecutionResult r = Run(*sm);
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.ToJson();
  EXPECT_EQ(r.output, Json::parse(R"([{"key":"logs/2024/a.txt","size":2},
                                     {"key":"logs/2024/b.txt","size":3}])"));
}

TEST_F(MapIoTest, KeyLeavingTheBucketIsRefused) {
  auto sm = Parse(MapMachine(R"("ItemReader":{"Resource":"arn:aws:states:::s3:getObject",
      "ReaderConfig":{"InputType":"JSON"},"Parameters":{"Bucket":"data","Key":"../secret.json"}})"));
  ExecutionResult r = Run(*sm);
  ASSERT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.error, "States.ItemReaderFailed");
  EXPECT_NE(r.cause->find("may not leave its bucket"), std::string::npos) << *r.cause;
}

TEST_F(MapIoTest, UnmappedBucketAndMissingObjectFail) {
  auto sm = Parse(MapMachine(R"("ItemReader":{"Resource":"arn:aws:states:::s3:getObject",
      "ReaderConfig":{"InputType":"JSON"},"Parameters":{"Bucket.$":"$.b","Key":"none.json"}})"));
  ExecutionResult r = Run(*sm, Json{{"b", "elsewhere"}});
  ASSERT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.error, "States.ItemReaderFailed");
  EXPECT_NE(r.cause->find("'elsewhere' is not mapped"), std::string::npos) << *r.cause;
  r = Run(*sm, Json{{"b", "data"}});
  ASSERT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_NE(r.cause->find("s3://data/none.json"), std::string::npos) << *r.cause;
}

TEST_F(MapIoTest, BatchesSelectedItemsWithBatchInput) {
  auto sm = Parse(MapMachine(R"("ItemsPath":"$.items",
      "ItemSelector":{"v.$":"$$.Map.Item.Value"},
      "ItemBatcher":{"MaxItemsPerBatch":2,"BatchInput":{"run.$":"$.run"}})"));
  ExecutionResult r = Run(*sm, Json::parse(R"({"run":"r1","items":[1,2,3,4,5]})"));
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.ToJson();
  EXPECT_EQ(r.output, Json::parse(R"([
    {"BatchInput":{"run":"r1"},"Items":[{"v":1},{"v":2}]},
    {"BatchInput":{"run":"r1"},"Items":[{"v":3},{"v":4}]},
    {"BatchInput":{"run":"r1"},"Items":[{"v":5}]}])"));
}

TEST_F(MapIoTest, BatchesByBytes) {
  auto sm = Parse(MapMachine(R"("ItemBatcher":{"MaxInputBytesPerBatch":12})"));
  // Each item serializes to 7 bytes ("\"aaaaa\""), so two never fit in 12.
  ExecutionResult r = Run(*sm, Json::parse(R"(["aaaaa","bbbbb","ccccc"])"));
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.ToJson();
  EXPECT_EQ(r.output.size(), 3u);
  EXPECT_EQ(r.output[0], Json::parse(R"({"Items":["aaaaa"]})"));
}

TEST_F(MapIoTest, ResultWriterWritesManifestAndResultFiles) {
  auto sm = Parse(MapMachine(R"("ItemsPath":"$.items","ToleratedFailureCount":1,
      "ResultWriter":{"Resource":"arn:aws:states:::s3:putObject",
                      "Parameters":{"Bucket":"data","Prefix":"out"}})",
                             R"({"Type":"Choice","Choices":[{"Variable":"$.ok","BooleanEquals":true,
         "Next":"Done"}],"Default":"Bad"},"Done":{"Type":"Succeed"},
         "Bad":{"Type":"Fail","Error":"Item.Bad","Cause":"not ok"})"));
  ExecutionResult r = Run(
      *sm, Json::parse(R"({"items":[{"ok":true,"n":1},{"ok":false,"n":2},{"ok":true,"n":3}]})"));
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.ToJson();
  ASSERT_TRUE(r.output.contains("MapRunArn")) << r.output;
  std::string key = r.output["ResultWriterDetails"]["Key"].get<std::string>();
  EXPECT_EQ(r.output["ResultWriterDetails"]["Bucket"], "data");
  EXPECT_EQ(key.rfind("out/", 0), 0u) << key;
  auto manifest = PosixFileSystem::Default()->ReadFile(bucket_ + "/" + key);
  ASSERT_OK(manifest.status());
  Json m = Json::parse(*manifest);
  ASSERT_EQ(m["ResultFiles"]["SUCCEEDED"].size(), 1u);
  ASSERT_EQ(m["ResultFiles"]["FAILED"].size(), 1u);
  auto ok_text = PosixFileSystem::Default()->ReadFile(
      bucket_ + "/" + m["ResultFiles"]["SUCCEEDED"][0]["Key"].get<std::string>());
  ASSERT_OK(ok_text.status());
  Json ok = Json::parse(*ok_text);
  ASSERT_EQ(ok.size(), 2u);
  EXPECT_EQ(ok[0]["Status"], "SUCCEEDED");
  // Without WriterConfig, Input and Output are JSON text as on AWS.
  EXPECT_EQ(Json::parse(ok[1]["Output"].get<std::string>()), Json::parse(R"({"ok":true,"n":3})"));
  auto bad_text = PosixFileSystem::Default()->ReadFile(
      bucket_ + "/" + m["ResultFiles"]["FAILED"][0]["Key"].get<std::string>());
  ASSERT_OK(bad_text.status());
  Json bad = Json::parse(*bad_text);
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0]["Error"], "Item.Bad");
  EXPECT_EQ(bad[0]["Cause"], "not ok");
}

TEST_F(MapIoTest, WriterConfigWithoutResourceTransformsTheOutput) {
  auto flat = Parse(MapMachine(R"("ResultWriter":{"WriterConfig":{"Transformation":"FLATTEN"}})",
                               R"j({"Type":"Pass","Parameters":{"pair.$":"States.Array($, $)"},
                                   "OutputPath":"$.pair","End":true})j"));
  ExecutionResult r = Run(*flat, Json::parse("[1,2]"));
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.ToJson();
  EXPECT_EQ(r.output, Json::parse("[1,1,2,2]"));
  auto compact =
      Parse(MapMachine(R"("ResultWriter":{"WriterConfig":{"Transformation":"COMPACT"}})"));
  r = Run(*compact, Json::parse("[1,2]"));
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.ToJson();
  EXPECT_EQ(r.output, Json::parse("[1,2]"));
}

TEST_F(MapIoTest, JsonataArgumentsReadItems) {
  Put("j.json", R"([10,20])");
  auto sm = Parse(R"({"QueryLanguage":"JSONata","StartAt":"M","States":{"M":{"Type":"Map",
    "ItemReader":{"Resource":"arn:aws:states:::s3:getObject","ReaderConfig":{"InputType":"JSON"},
                  "Arguments":{"Bucket":"data","Key":"{% $states.input.key %}"}},
    "ItemProcessor":{"ProcessorConfig":{"Mode":"DISTRIBUTED","ExecutionType":"STANDARD"},
      "StartAt":"P","States":{"P":{"Type":"Pass","Output":"{% $states.input * 2 %}","End":true}}},
    "End":true}}})");
  ExecutionResult r = Run(*sm, Json{{"key", "j.json"}});
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.ToJson();
  EXPECT_EQ(r.output, Json::parse("[20,40]"));
}

TEST(MapIoValidationTest, ReportsEveryProblemWithItsField) {
  std::vector<Diagnostic> problems;
  auto sm = Parse(R"({"StartAt":"M","States":{"M":{"Type":"Map",
      "ItemReader":{"Resource":"arn:aws:states:::s3:getObject","Parameters":{"Bucket":"b"},
                    "ReaderConfig":{"InputType":"XML","CSVDelimiter":"DOT"}},
      "ItemBatcher":{"BatchInput":{}},
      "ResultWriter":{"Resource":"arn:aws:states:::s3:deleteObject"},
      "ItemProcessor":{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}},"End":true}}})",
                  &problems);
  EXPECT_EQ(sm, nullptr);
  std::string all;
  for (const auto& d : problems) all += d.ToString() + "\n";
  for (const char* want :
       {"/States/M/ItemReader (state 'M'): ItemReader needs ItemProcessor.ProcessorConfig.Mode",
        "/States/M/ItemReader/ReaderConfig/InputType",
        "/States/M/ItemReader/ReaderConfig/CSVDelimiter",
        "/States/M/ItemBatcher (state 'M'): ItemBatcher needs MaxItemsPerBatch",
        "/States/M/ResultWriter/Resource"}) {
    EXPECT_NE(all.find(want), std::string::npos) << want << "\n" << all;
  }
}

}  // namespace
}  // namespace engage::flow
