#include "engage/sql/functions.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engage/core/json.h"

namespace engage::sql {
namespace {

struct TextHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// The index of the first of the `n` ascending `edges` that is >= v (n when none is): what
// std::lower_bound returns, without its unpredictable branches (a conditional move per halving),
// which on random data made binning 5 times slower.
size_t LowerBound(const double* edges, size_t n, double v) {
  if (n == 0) return 0;
  const double* base = edges;
  size_t len = n;
  while (len > 1) {
    size_t half = len / 2;
    base += base[half - 1] < v ? half : 0;
    len -= half;
  }
  return static_cast<size_t>(base - edges) + (*base < v ? 1 : 0);
}

// Adds the bins of `values` (none NaN) to `counts`. Sixteen values go down the search together:
// the halvings depend only on the number of edges, so their searches run in lockstep and the
// processor overlaps them, where one search at a time waits on each comparison (3-4 times
// faster).
void BinMany(const std::vector<double>& edges, const std::vector<double>& values,
             std::vector<int64_t>* counts) {
  const size_t n = edges.size();
  const double* e = edges.data();
  int64_t* c = counts->data();
  if (n == 0) {
    c[0] += static_cast<int64_t>(values.size());
    return;
  }
  constexpr size_t kLanes = 16;
  size_t i = 0;
  for (; i + kLanes <= values.size(); i += kLanes) {
    const double* v = values.data() + i;
    const double* base[kLanes];
    for (size_t k = 0; k < kLanes; ++k) base[k] = e;
    for (size_t len = n; len > 1;) {
      size_t half = len / 2;
      for (size_t k = 0; k < kLanes; ++k) base[k] += base[k][half - 1] < v[k] ? half : 0;
      len -= half;
    }
    for (size_t k = 0; k < kLanes; ++k) c[(base[k] - e) + (*base[k] < v[k] ? 1 : 0)]++;
  }
  for (; i < values.size(); ++i) c[LowerBound(e, n, values[i])]++;
}

// A uniform sample of at most kSampleSize values (reservoir sampling), from which
// engage_quantiles takes its quantiles: sorting every value of a million-row column is what made
// quantile_disc slow. Deterministic for a given order of values (a fixed-seed generator).
constexpr size_t kSampleSize = 20000;

uint64_t SplitMix(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

struct Inlined {
  uint64_t lo, hi;
  bool operator==(const Inlined& o) const { return lo == o.lo && hi == o.hi; }
};
struct InlinedHash {
  size_t operator()(const Inlined& k) const {
    return static_cast<size_t>((k.lo * 0x9e3779b97f4a7c15ull) ^ (k.hi * 0xc2b2ae3d27d4eb4full));
  }
};
constexpr size_t kMaxInlined = 4096;

// What one group of one of the aggregates holds. DuckDB owns the state's bytes (a pointer to
// this): it is allocated on the group's first value and freed by Destroy.
struct Accumulator {
  std::string argument;  // the constant second argument, as first seen
  std::vector<double> edges;
  std::unordered_map<std::string, size_t, TextHash, std::equal_to<>> categories;
  // engage_category_counts: the index of an inlined string (up to 12 bytes, which DuckDB keeps in
  // the 16 bytes of its string_t, zero-padded), looked up by those 16 bytes: cheaper than hashing
  // and comparing the text. Bounded, for columns of many distinct values.
  std::unordered_map<Inlined, size_t, InlinedHash> inlined;
  int64_t steps = 0;
  std::vector<int64_t> counts;  // bins or categories (+ other)
  std::vector<double> values;   // engage_quantiles: the sample
  int64_t seen = 0;             // values offered to the sample
  uint64_t rng = 0x5eed;
};

struct State {
  Accumulator* acc;
};

enum class Kind { kBins, kCategories, kQuantiles };

const char* NameOf(Kind k) {
  switch (k) {
    case Kind::kBins:
      return "engage_bin_counts";
    case Kind::kCategories:
      return "engage_category_counts";
    case Kind::kQuantiles:
      return "engage_quantiles";
  }
  return "?";
}

std::string_view StringAt(duckdb_vector v, idx_t row) {
  auto* s = static_cast<duckdb_string_t*>(duckdb_vector_get_data(v)) + row;
  return {duckdb_string_t_data(s), duckdb_string_t_length(*s)};
}

bool Valid(uint64_t* validity, idx_t row) {
  return validity == nullptr || duckdb_validity_row_is_valid(validity, row);
}

// Parses the second argument into a fresh accumulator; "" on success, else why not.
std::string Setup(Kind kind, duckdb_vector arg, idx_t row, Accumulator* acc) {
  if (kind == Kind::kQuantiles) {
    acc->steps = static_cast<int64_t*>(duckdb_vector_get_data(arg))[row];
    if (acc->steps < 2 || acc->steps > 100000) return "steps must be from 2 to 100000";
    return "";
  }
  acc->argument = std::string(StringAt(arg, row));
  if (kind == Kind::kBins) {
    const char* p = acc->argument.c_str();
    while (*p != '\0') {
      char* end = nullptr;
      double v = std::strtod(p, &end);
      if (end == p || std::isnan(v)) return "edges must be numbers separated by commas";
      if (!acc->edges.empty() && !(acc->edges.back() < v)) {
        return "edges must be distinct and ascending";
      }
      acc->edges.push_back(v);
      p = end;
      if (*p == ',') ++p;
    }
    acc->counts.assign(acc->edges.size() + 1, 0);
    return "";
  }
  Json list = Json::parse(acc->argument, nullptr, false);
  if (!list.is_array()) return "categories must be a JSON array of strings";
  for (const Json& c : list) {
    if (!c.is_string()) return "categories must be a JSON array of strings";
    acc->categories.emplace(c.get<std::string>(), acc->categories.size());
  }
  acc->counts.assign(acc->categories.size() + 1, 0);
  return "";
}

// The second argument of `row` is the one the accumulator was set up with.
bool SameArgument(Kind kind, duckdb_vector arg, idx_t row, const Accumulator& acc) {
  if (kind == Kind::kQuantiles)
    return static_cast<int64_t*>(duckdb_vector_get_data(arg))[row] == acc.steps;
  return StringAt(arg, row) == acc.argument;
}

template <Kind kKind>
idx_t StateSize(duckdb_function_info) {
  return sizeof(State);
}

template <Kind kKind>
void Init(duckdb_function_info, duckdb_aggregate_state state) {
  reinterpret_cast<State*>(state)->acc = nullptr;
}

void Destroy(duckdb_aggregate_state* states, idx_t count) {
  for (idx_t i = 0; i < count; ++i) {
    auto* s = reinterpret_cast<State*>(states[i]);
    std::unique_ptr<Accumulator> owned(s->acc);  // frees it
    s->acc = nullptr;
  }
}

// Inputs arrive flattened (the C API flattens an aggregate's input vectors).
template <Kind kKind>
void Update(duckdb_function_info info, duckdb_data_chunk input, duckdb_aggregate_state* states) {
  const idx_t n = duckdb_data_chunk_get_size(input);
  duckdb_vector xv = duckdb_data_chunk_get_vector(input, 0);
  duckdb_vector av = duckdb_data_chunk_get_vector(input, 1);
  uint64_t* x_valid = duckdb_vector_get_validity(xv);
  uint64_t* a_valid = duckdb_vector_get_validity(av);
  auto fail = [&](const std::string& why) {
    std::string m = fmt::format("{}: {}", NameOf(kKind), why);
    duckdb_aggregate_function_set_error(info, m.c_str());
  };
  Accumulator* last = nullptr;  // the accumulator of the previous row, checked already
  // engage_bin_counts: the values of a run of rows of one group, binned together.
  thread_local std::vector<double> run;
  run.clear();
  auto flush = [&]() {
    if (last != nullptr && !run.empty()) BinMany(last->edges, run, &last->counts);
    run.clear();
  };
  for (idx_t row = 0; row < n; ++row) {
    auto* s = reinterpret_cast<State*>(states[row]);
    if (s->acc != last || last == nullptr) {
      if (!Valid(a_valid, row)) return fail("the second argument must not be NULL");
      if (s->acc == nullptr) {
        auto owned = std::make_unique<Accumulator>();
        std::string why = Setup(kKind, av, row, owned.get());
        if (!why.empty()) return fail(why);
        s->acc = owned.release();  // freed by Destroy
      } else if (!SameArgument(kKind, av, row, *s->acc)) {
        return fail("the second argument must be the same on every row");
      }
      if constexpr (kKind == Kind::kBins) flush();
      last = s->acc;
    }
    if (!Valid(x_valid, row)) continue;
    Accumulator& a = *s->acc;
    if constexpr (kKind == Kind::kCategories) {
      auto* str = static_cast<duckdb_string_t*>(duckdb_vector_get_data(xv)) + row;
      if (duckdb_string_is_inlined(*str)) {
        Inlined key;
        std::memcpy(&key, str, sizeof key);
        auto hit = a.inlined.find(key);
        if (hit != a.inlined.end()) {
          a.counts[hit->second]++;
          continue;
        }
        auto it = a.categories.find(StringAt(xv, row));
        size_t index = it == a.categories.end() ? a.counts.size() - 1 : it->second;
        if (a.inlined.size() < kMaxInlined) a.inlined.emplace(key, index);
        a.counts[index]++;
        continue;
      }
      auto it = a.categories.find(StringAt(xv, row));
      a.counts[it == a.categories.end() ? a.counts.size() - 1 : it->second]++;
    } else {
      double v = static_cast<double*>(duckdb_vector_get_data(xv))[row];
      if (std::isnan(v)) continue;
      if constexpr (kKind == Kind::kBins) {
        run.push_back(v);
      } else {
        // Reservoir sampling: the i-th value replaces a random one of the sample with
        // probability size / i (a multiply-shift instead of a division picks the slot).
        ++a.seen;
        if (a.values.size() < kSampleSize) {
          a.values.push_back(v);
        } else {
          uint64_t j = ((SplitMix(&a.rng) >> 32) * static_cast<uint64_t>(a.seen)) >> 32;
          if (j < kSampleSize) a.values[j] = v;
        }
      }
    }
  }
  if constexpr (kKind == Kind::kBins) flush();
}

template <Kind kKind>
void Combine(duckdb_function_info info, duckdb_aggregate_state* source,
             duckdb_aggregate_state* target, idx_t count) {
  for (idx_t i = 0; i < count; ++i) {
    auto* src = reinterpret_cast<State*>(source[i]);
    auto* dst = reinterpret_cast<State*>(target[i]);
    if (src->acc == nullptr) continue;
    if (dst->acc == nullptr) {
      std::swap(dst->acc, src->acc);  // moved: the source no longer owns it
      continue;
    }
    Accumulator& d = *dst->acc;
    Accumulator& s = *src->acc;
    if (d.argument != s.argument || d.steps != s.steps || d.counts.size() != s.counts.size()) {
      std::string m =
          fmt::format("{}: the second argument must be the same on every row", NameOf(kKind));
      duckdb_aggregate_function_set_error(info, m.c_str());
      return;
    }
    for (size_t b = 0; b < d.counts.size(); ++b) d.counts[b] += s.counts[b];
    if (d.values.size() + s.values.size() <= kSampleSize) {
      d.values.insert(d.values.end(), s.values.begin(), s.values.end());
    } else {
      // Two samples into one: from each, a random subset in proportion to the values it saw.
      auto shuffle = [&](std::vector<double>& v) {
        for (size_t k = v.size(); k > 1; --k) std::swap(v[k - 1], v[SplitMix(&d.rng) % k]);
      };
      shuffle(d.values);
      shuffle(s.values);
      double share = static_cast<double>(d.seen) / static_cast<double>(d.seen + s.seen);
      size_t from_d =
          std::min(d.values.size(), static_cast<size_t>(std::llround(share * kSampleSize)));
      size_t from_s = std::min(s.values.size(), kSampleSize - from_d);
      d.values.resize(from_d);
      d.values.insert(d.values.end(), s.values.begin(),
                      s.values.begin() + static_cast<std::ptrdiff_t>(from_s));
    }
    d.seen += s.seen;
  }
}

template <Kind kKind>
void Finalize(duckdb_function_info, duckdb_aggregate_state* source, duckdb_vector result,
              idx_t count, idx_t offset) {
  for (idx_t i = 0; i < count; ++i) {
    Accumulator* a = reinterpret_cast<State*>(source[i])->acc;
    std::string text = "[";
    if (a != nullptr && kKind == Kind::kQuantiles) {
      std::sort(a->values.begin(), a->values.end());
      const int64_t n = static_cast<int64_t>(a->values.size());
      for (int64_t k = 1; k < a->steps && n > 0; ++k) {
        // ceil(k / steps * n), 1-based, in integers.
        int64_t at = std::clamp<int64_t>((k * n + a->steps - 1) / a->steps, 1, n);
        double q = a->values[static_cast<size_t>(at - 1)];
        text += fmt::format("{}{}", k > 1 ? "," : "",
                            std::isfinite(q) ? fmt::format("{}", q) : std::string("null"));
      }
    } else if (a != nullptr) {
      for (size_t b = 0; b < a->counts.size(); ++b) {
        text += fmt::format("{}{}", b ? "," : "", a->counts[b]);
      }
    }
    text += "]";
    duckdb_vector_assign_string_element_len(result, offset + i, text.data(), text.size());
  }
}

template <Kind kKind>
Status Register(lake::DuckConn& conn, duckdb_type x_type, duckdb_type arg_type) {
  duckdb_aggregate_function f = duckdb_create_aggregate_function();
  duckdb_aggregate_function_set_name(f, NameOf(kKind));
  duckdb_logical_type x = duckdb_create_logical_type(x_type);
  duckdb_logical_type arg = duckdb_create_logical_type(arg_type);
  duckdb_logical_type text = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
  duckdb_aggregate_function_add_parameter(f, x);
  duckdb_aggregate_function_add_parameter(f, arg);
  duckdb_aggregate_function_set_return_type(f, text);
  duckdb_aggregate_function_set_functions(f, StateSize<kKind>, Init<kKind>, Update<kKind>,
                                          Combine<kKind>, Finalize<kKind>);
  duckdb_aggregate_function_set_destructor(f, Destroy);
  // NULL values reach Update (which skips them) rather than being filtered out by DuckDB, so a
  // group of only NULLs still has its (empty) bins.
  duckdb_aggregate_function_set_special_handling(f);
  duckdb_state st = duckdb_register_aggregate_function(conn.raw(), f);
  duckdb_destroy_logical_type(&text);
  duckdb_destroy_logical_type(&arg);
  duckdb_destroy_logical_type(&x);
  duckdb_destroy_aggregate_function(&f);
  if (st != DuckDBSuccess) {
    return InternalError(fmt::format("could not register the SQL function {}", NameOf(kKind)));
  }
  return Status::Ok();
}

}  // namespace

Status RegisterEngageFunctions(lake::DuckConn& conn) {
  ENGAGE_RETURN_IF_ERROR(Register<Kind::kBins>(conn, DUCKDB_TYPE_DOUBLE, DUCKDB_TYPE_VARCHAR));
  ENGAGE_RETURN_IF_ERROR(
      Register<Kind::kCategories>(conn, DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_VARCHAR));
  ENGAGE_RETURN_IF_ERROR(Register<Kind::kQuantiles>(conn, DUCKDB_TYPE_DOUBLE, DUCKDB_TYPE_BIGINT));
  return Status::Ok();
}

}  // namespace engage::sql
