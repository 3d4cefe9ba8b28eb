// SQL aggregates Engage adds to its DuckDB databases (every QueryEngine registers them). They are
// what `engage drift` summarises 100 columns of millions of rows with, in one parallel pass each:
// DuckDB's own quantile_disc(x, [199 quantiles]), histogram(x, boundaries) and histogram(x) do the
// same work about 25 times slower (bench/monitor: quantile_disc sorts every value, histogram
// compares each row's boundaries with the first row's, and a list argument is copied into every
// row).
//
//   engage_bin_counts(x DOUBLE, edges VARCHAR) -> VARCHAR
//     How many values of `x` fall in each bin of `edges` (ascending, distinct doubles as text,
//     comma-separated, e.g. '0.5,1,2.25'), as JSON text "[c0, ..., cN]" with N the number of
//     edges: bin i < N counts edges[i-1] < x <= edges[i] (bin 0: x <= edges[0]), bin N counts
//     x > edges[N-1] (histogram(x, boundaries)'s buckets). NULL and NaN are not counted.
//   engage_category_counts(x VARCHAR, categories VARCHAR) -> VARCHAR
//     How many values of `x` equal each of `categories` (a JSON array of strings), then how many
//     other values there are: "[c0, ..., ck-1, other]". NULL is not counted.
//   engage_quantiles(x DOUBLE, steps BIGINT) -> VARCHAR
//     The i/steps quantiles of `x` for i = 1 .. steps-1, as JSON text "[q1, ...]": each the value
//     at position ceil(p * n) (1-based) of the sorted values (quantile_disc's choice), NULL and
//     NaN left out; "[]" when there are none. Exact up to 20,000 values; beyond, the quantiles of
//     a uniform sample of 20,000 of them (reservoir sampling per thread, merged in proportion).
//
// The second argument must be the same on every row (a constant); otherwise the query fails.
#pragma once

#include "engage/core/status.h"
#include "engage/lake/duck.h"

namespace engage::sql {

// Registers Engage's functions on `conn`'s database. kInternal if DuckDB refuses.
Status RegisterEngageFunctions(lake::DuckConn& conn);

}  // namespace engage::sql
