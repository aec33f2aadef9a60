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

namespace kiln {

inline constexpr int kWriteRowsDst = 0;
inline constexpr int kWriteRowsSrc = 1;
inline constexpr int kWriteRowsRows = 2;

}  // namespace kiln
