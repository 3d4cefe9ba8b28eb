// bench/serve/make_predictions.cc: writes a synthetic predictions table (the schema of
// PredictionsTableSpec in src/core/config.cc) for customers "0".."<n-1>" to one Parquet file,
// with DuckDB's C API. run.sh compiles it with g++ against third_party/duckdb: it is a tool of
// the benchmark, not part of Engage.
//
// Usage: make_predictions --customers N --out FILE --scored-at 'YYYY-MM-DD HH:MM:SS'
//                         [--model engagement] [--model-version 1] [--temp DIR]
// Values are deterministic functions of the id (hash), so every run writes the same table.
#include <duckdb.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "make_predictions: %s\n", what.c_str());
  std::exit(1);
}

// Owns the database, the connection and each result (the C API hands out raw handles).
class Duck {
 public:
  explicit Duck(const std::string& temp_dir) {
    if (duckdb_open(nullptr, &db_) != DuckDBSuccess) Die("cannot open an in-memory DuckDB");
    if (duckdb_connect(db_, &conn_) != DuckDBSuccess) Die("cannot connect to DuckDB");
    if (!temp_dir.empty()) Exec("SET temp_directory = '" + temp_dir + "'");
    // Row order in the file does not matter: engage publish sorts by customer_id.
    Exec("SET preserve_insertion_order = false");
  }
  ~Duck() {
    duckdb_disconnect(&conn_);
    duckdb_close(&db_);
  }
  Duck(const Duck&) = delete;
  Duck& operator=(const Duck&) = delete;

  void Exec(const std::string& sql) {
    duckdb_result r;
    if (duckdb_query(conn_, sql.c_str(), &r) != DuckDBSuccess) {
      std::string err = duckdb_result_error(&r) ? duckdb_result_error(&r) : "unknown error";
      duckdb_destroy_result(&r);
      Die(err + "\nSQL: " + sql.substr(0, 400));
    }
    duckdb_destroy_result(&r);
  }

 private:
  duckdb_database db_ = nullptr;
  duckdb_connection conn_ = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  long long customers = 1000000;
  long long model_version = 1;
  std::string out, scored_at, model = "engagement", temp;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--customers") {
      customers = std::atoll(value.c_str());
    } else if (flag == "--out") {
      out = value;
    } else if (flag == "--scored-at") {
      scored_at = value;
    } else if (flag == "--model") {
      model = value;
    } else if (flag == "--model-version") {
      model_version = std::atoll(value.c_str());
    } else if (flag == "--temp") {
      temp = value;
    } else {
      Die("unknown flag " + flag);
    }
  }
  if (out.empty() || scored_at.empty() || customers <= 0) {
    Die("usage: make_predictions --customers N --out FILE --scored-at TIMESTAMP");
  }
  Duck duck(temp);
  // Uniform pseudo-random numbers in [0, 1) from the id: u(k) = hash(i * 8 + k) / 2^64.
  auto u = [](int k) {
    return "(hash(i * 8 + " + std::to_string(k) + ") / 18446744073709551616.0)";
  };
  // Four reasons, as the engagement model writes them: the answer is then about 400 bytes.
  std::string reasons =
      "printf('[{\"feature\":\"recency_days\",\"contribution\":%.4f},"
      "{\"feature\":\"orders_90d\",\"contribution\":%.4f},"
      "{\"feature\":\"sessions_30d\",\"contribution\":%.4f},"
      "{\"feature\":\"avg_order_value\",\"contribution\":%.4f}]', " +
      u(4) + " - 0.5, " + u(5) + " - 0.5, " + u(6) + " - 0.5, " + u(7) + " - 0.5)";
  std::string sql = "COPY (SELECT i::VARCHAR AS customer_id, TIMESTAMP '" + scored_at +
                    "' AS scored_at, CAST(TIMESTAMP '" + scored_at + "' AS DATE) - 1 AS cutoff, " +
                    u(0) + " AS score, CASE WHEN " + u(0) + " > 0.66 THEN 'high' WHEN " + u(0) +
                    " > 0.33 THEN 'medium' ELSE 'low' END AS segment, " + u(1) +
                    " AS p_alive, 5 * " + u(2) + " AS expected_transactions, 400 * " + u(3) +
                    " AS clv, " + reasons + " AS reasons, '" + model + "' AS model, " +
                    std::to_string(model_version) + "::BIGINT AS model_version FROM range(" +
                    std::to_string(customers) + ") t(i)) TO '" + out +
                    "' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)";
  duck.Exec(sql);
  return 0;
}
