// SQL functions Engage adds to its DuckDB databases (every QueryEngine registers them).
//
//   engage_bin_counts(x DOUBLE, edges DOUBLE[]) -> VARCHAR
//
// An aggregate: how many values of `x` fall in each bin of the ascending `edges`, as JSON text
// "[c0, c1, ..., cN]" with N = len(edges): bin i (< N) counts edges[i-1] < x <= edges[i] (bin 0:
// x <= edges[0]), bin N counts x > edges[N-1]. NULL and NaN are not counted (the caller counts
// them as missing). DuckDB's histogram(x, boundaries) buckets the same way, but compares each
// row's boundaries with the first's (and is ~20x slower); here `edges` must be a constant. It is
// what `engage drift` bins 100 columns of millions of rows with, in one parallel pass.
#pragma once

#include "engage/core/status.h"
#include "engage/lake/duck.h"

namespace engage::sql {

// Registers Engage's functions on `conn`'s database. kInternal if DuckDB refuses.
Status RegisterEngageFunctions(lake::DuckConn& conn);

}  // namespace engage::sql
