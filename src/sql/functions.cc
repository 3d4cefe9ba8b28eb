#include "engage/sql/functions.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace engage::sql {
namespace {

// The counts of one group. DuckDB owns the state's bytes (a pointer to this), so the counts are
// heap-allocated in Init's first Update and freed in Destroy.
struct BinCounts {
  std::vector<int64_t> counts;  // len(edges) + 1 bins
};
struct BinState {
  BinCounts* bins;
};

idx_t BinStateSize(duckdb_function_info) { return sizeof(BinState); }

void BinInit(duckdb_function_info, duckdb_aggregate_state state) {
  reinterpret_cast<BinState*>(state)->bins = nullptr;
}

void BinDestroy(duckdb_aggregate_state* states, idx_t count) {
  for (idx_t i = 0; i < count; ++i) {
    auto* s = reinterpret_cast<BinState*>(states[i]);
    std::unique_ptr<BinCounts> owned(s->bins);  // frees it
    s->bins = nullptr;
  }
}

// Inputs arrive flattened (the C API flattens an aggregate's input vectors).
void BinUpdate(duckdb_function_info info, duckdb_data_chunk input, duckdb_aggregate_state* states) {
  idx_t n = duckdb_data_chunk_get_size(input);
  if (n == 0) return;
  duckdb_vector xv = duckdb_data_chunk_get_vector(input, 0);
  duckdb_vector ev = duckdb_data_chunk_get_vector(input, 1);
  const auto* x = static_cast<const double*>(duckdb_vector_get_data(xv));
  uint64_t* x_valid = duckdb_vector_get_validity(xv);
  const auto* lists = static_cast<const duckdb_list_entry*>(duckdb_vector_get_data(ev));
  uint64_t* e_valid = duckdb_vector_get_validity(ev);
  if (e_valid && !duckdb_validity_row_is_valid(e_valid, 0)) {
    duckdb_aggregate_function_set_error(info, "engage_bin_counts: edges must not be NULL");
    return;
  }
  // The edges of the first row; a constant argument has the same list on every row.
  const duckdb_list_entry first = lists[0];
  const auto* child =
      static_cast<const double*>(duckdb_vector_get_data(duckdb_list_vector_get_child(ev)));
  const double* edges = child + first.offset;
  const idx_t bins = first.length + 1;
  for (idx_t i = 1; i < first.length; ++i) {
    if (!(edges[i - 1] < edges[i])) {
      duckdb_aggregate_function_set_error(
          info, "engage_bin_counts: edges must be distinct, ascending and not NaN");
      return;
    }
  }
  for (idx_t row = 0; row < n; ++row) {
    if (lists[row].length != first.length) {
      duckdb_aggregate_function_set_error(info,
                                          "engage_bin_counts: edges must be the same on every row");
      return;
    }
    auto* s = reinterpret_cast<BinState*>(states[row]);
    if (!s->bins) {
      auto owned = std::make_unique<BinCounts>();
      owned->counts.assign(bins, 0);
      s->bins = owned.release();  // freed by BinDestroy
    } else if (s->bins->counts.size() != bins) {
      duckdb_aggregate_function_set_error(info,
                                          "engage_bin_counts: edges must be the same on every row");
      return;
    }
    if (x_valid && !duckdb_validity_row_is_valid(x_valid, row)) continue;
    double v = x[row];
    if (v != v) continue;  // NaN: missing
    s->bins
        ->counts[static_cast<size_t>(std::lower_bound(edges, edges + first.length, v) - edges)]++;
  }
}

void BinCombine(duckdb_function_info info, duckdb_aggregate_state* source,
                duckdb_aggregate_state* target, idx_t count) {
  for (idx_t i = 0; i < count; ++i) {
    auto* src = reinterpret_cast<BinState*>(source[i]);
    auto* dst = reinterpret_cast<BinState*>(target[i]);
    if (!src->bins) continue;
    if (!dst->bins) {
      dst->bins = src->bins;  // moved: the source state no longer owns it
      src->bins = nullptr;
      continue;
    }
    if (dst->bins->counts.size() != src->bins->counts.size()) {
      duckdb_aggregate_function_set_error(info,
                                          "engage_bin_counts: edges must be the same on every row");
      return;
    }
    for (size_t b = 0; b < dst->bins->counts.size(); ++b) {
      dst->bins->counts[b] += src->bins->counts[b];
    }
  }
}

void BinFinalize(duckdb_function_info, duckdb_aggregate_state* source, duckdb_vector result,
                 idx_t count, idx_t offset) {
  for (idx_t i = 0; i < count; ++i) {
    auto* s = reinterpret_cast<BinState*>(source[i]);
    std::string text = "[";
    if (s->bins) {
      for (size_t b = 0; b < s->bins->counts.size(); ++b) {
        if (b) text += ",";
        text += std::to_string(s->bins->counts[b]);
      }
    }
    text += "]";
    duckdb_vector_assign_string_element_len(result, offset + i, text.data(), text.size());
  }
}

}  // namespace

Status RegisterEngageFunctions(lake::DuckConn& conn) {
  duckdb_aggregate_function f = duckdb_create_aggregate_function();
  duckdb_aggregate_function_set_name(f, "engage_bin_counts");
  duckdb_logical_type dbl = duckdb_create_logical_type(DUCKDB_TYPE_DOUBLE);
  duckdb_logical_type list = duckdb_create_list_type(dbl);
  duckdb_logical_type text = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
  duckdb_aggregate_function_add_parameter(f, dbl);
  duckdb_aggregate_function_add_parameter(f, list);
  duckdb_aggregate_function_set_return_type(f, text);
  duckdb_aggregate_function_set_functions(f, BinStateSize, BinInit, BinUpdate, BinCombine,
                                          BinFinalize);
  duckdb_aggregate_function_set_destructor(f, BinDestroy);
  // NULL inputs reach Update (and are skipped there) rather than being filtered by DuckDB, so an
  // all-NULL group still has its bins.
  duckdb_aggregate_function_set_special_handling(f);
  duckdb_state st = duckdb_register_aggregate_function(conn.raw(), f);
  duckdb_destroy_logical_type(&text);
  duckdb_destroy_logical_type(&list);
  duckdb_destroy_logical_type(&dbl);
  duckdb_destroy_aggregate_function(&f);
  if (st != DuckDBSuccess) {
    return InternalError("could not register the SQL function engage_bin_counts");
  }
  return Status::Ok();
}

}  // namespace engage::sql
