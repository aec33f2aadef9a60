// The conformance grids: for every op, sub-grids of cases (shapes, dtypes,
// attributes, strided and permuted views, value distributions), as data.
// The full grid is each sub-grid's cartesian product pruned by cost; the
// quick grid (CI-sized) takes every parameter value at least once.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "conformance/case.h"
#include "conformance/grid_builder.h"

namespace kiln::conformance {

// Every case, or those of one op (op != ""), in a stable order.
std::vector<Case> MakeGrid(GridSize size, absl::string_view op = "");

// Every sub-grid, each tagged with the ops its cases use.
struct OpSubGrid {
  std::string op;
  SubGrid grid;
};
std::vector<OpSubGrid> AllSubGrids();

// The sub-grids of each family (grids.cc, grids_attention.cc).
void AddElementwiseGrids(std::vector<OpSubGrid>& grids);
void AddLinearAlgebraGrids(std::vector<OpSubGrid>& grids);  // matmul, linear, softmax, norms, rope
void AddLayoutGrids(std::vector<OpSubGrid>& grids);         // gather ... contiguous, reductions
void AddStateGrids(std::vector<OpSubGrid>& grids);          // conv1d_causal, write_rows
void AddAttentionGrids(std::vector<OpSubGrid>& grids);      // flash_attn, gated_delta_net
// Chains of several nodes in one split (op "chain", grids_chain.cc).
void AddChainGrids(std::vector<OpSubGrid>& grids);
inline constexpr char kChainOp[] = "chain";

}  // namespace kiln::conformance
