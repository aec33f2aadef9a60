// write_rows: what backends need besides the schema.
//   inputs  dst [..., R, C], src [..., n, C] (same leading dims), rows i32 [n]
//   output  out [..., R, C]: dst with row rows[i] replaced by src row i, for
//           every leading index
// src has dst's dtype (any, q8_0 included: rows are copied as bytes), or both
// are float (f32/f16/bf16) and src values are rounded to dst's dtype.
// A row index outside [0, R) is a run-time error naming the node; the
// reference checks every index before writing anything. With repeated
// indices the last one wins. out may alias dst (OpSchema.inplace): then dst
// is not copied, only the rows are written.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "graph/graph.h"
#include "graph/tensor_view.h"
#include "ops/op_params.h"

namespace kiln {

inline constexpr int kWriteRowsDst = 0;
inline constexpr int kWriteRowsSrc = 1;
inline constexpr int kWriteRowsRows = 2;

struct WriteRowsParams {
  int lead_rank = 0;  // dst's leading dims (rank - 2)
  int64_t lead = 1;   // their product
  int64_t R = 0, C = 0, n = 0;  // dst rows, row length, rows written
  bool convert = false;  // src dtype != dst dtype (both float: round); else a byte copy
  int64_t row_bytes = 0; // bytes of one row of dst (q8_0: C/32 blocks)
  TensorLayout dst, src, rows, out;
};

absl::StatusOr<WriteRowsParams> ResolveWriteRows(const Graph& graph, const Node& node);
absl::StatusOr<WriteRowsParams> ResolveWriteRows(const Node& node,
                                                 absl::Span<const TensorView> inputs,
                                                 absl::Span<const TensorView> outputs);
absl::StatusOr<WriteRowsParams> ResolveWriteRows(const ParamContext& ctx);

}  // namespace kiln
