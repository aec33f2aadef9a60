#include "scheduler/placement.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ops/op_schema.h"

namespace kiln {

std::vector<int> Placement::UsedBackends() const {
  std::vector<int> used;
  for (const SplitPlan& s : splits) {
    if (std::find(used.begin(), used.end(), s.backend) == used.end()) used.push_back(s.backend);
  }
  return used;
}

absl::StatusOr<Placement> PlaceNodes(const Graph& graph, absl::Span<Backend* const> backends) {
  if (backends.empty()) return absl::InvalidArgumentError("no backend given");
  // Listing every unplaceable node helps more than stopping at the first,
  // but a huge graph should not give a huge message.
  constexpr int kMaxListed = 8;
  Placement placement;
  std::vector<std::string> failures;
  int failed = 0;
  for (size_t ni = 0; ni < graph.nodes.size(); ++ni) {
    const Node& node = graph.nodes[ni];
    int chosen = -1;
    std::vector<std::string> reasons;
    for (size_t b = 0; b < backends.size(); ++b) {
      const Support s = backends[b]->supports(graph, node);
      if (s.ok) {
        chosen = static_cast<int>(b);
        break;
      }
      reasons.push_back(absl::StrCat(backends[b]->name(), ": ",
                                     s.reason.empty() ? "not supported" : s.reason));
    }
    if (chosen < 0) {
      if (++failed <= kMaxListed) {
        failures.push_back(absl::StrCat(NodeLabel(node), " (", absl::StrJoin(reasons, ", "), ")"));
      }
      continue;
    }
    placement.node_backend.push_back(chosen);
    if (placement.splits.empty() || placement.splits.back().backend != chosen) {
      placement.splits.push_back({chosen, {}});
    }
    placement.splits.back().nodes.push_back(static_cast<int>(ni));
  }
  if (failed > 0) {
    std::string more = failed > kMaxListed ? absl::StrCat("; and ", failed - kMaxListed, " more") : "";
    return absl::UnimplementedError(absl::StrCat("no backend runs ", failed,
                                                 failed == 1 ? " node: " : " nodes: ",
                                                 absl::StrJoin(failures, "; "), more));
  }
  return placement;
}

}  // namespace kiln
