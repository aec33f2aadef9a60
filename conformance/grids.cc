#include "conformance/grids.h"

namespace kiln::conformance {

std::vector<OpSubGrid> AllSubGrids() {
  std::vector<OpSubGrid> grids;
  AddElementwiseGrids(grids);
  AddLinearAlgebraGrids(grids);
  AddLayoutGrids(grids);
  AddStateGrids(grids);
  AddAttentionGrids(grids);
  AddChainGrids(grids);
  return grids;
}

std::vector<Case> MakeGrid(GridSize size, absl::string_view op) {
  std::vector<Case> cases;
  for (const OpSubGrid& g : AllSubGrids()) {
    if (!op.empty() && g.op != op) continue;
    for (Case& c : Expand(g.grid, size)) cases.push_back(std::move(c));
  }
  return cases;
}

}  // namespace kiln::conformance
