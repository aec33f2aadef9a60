#include "scheduler/profile.h"

#include <algorithm>
#include <map>
#include <utility>

namespace kiln {

std::vector<OpProfile> AggregateByOp(const std::vector<NodeProfile>& nodes) {
  std::map<std::pair<std::string, std::string>, OpProfile> by_op;
  for (const NodeProfile& n : nodes) {
    if (n.count == 0) continue;
    OpProfile& row = by_op[{n.op, n.backend}];
    row.op = n.op;
    row.backend = n.backend;
    row.count += n.count;
    row.total_us += n.total_us;
  }
  std::vector<OpProfile> rows;
  for (auto& [key, row] : by_op) rows.push_back(std::move(row));
  std::stable_sort(rows.begin(), rows.end(),
                   [](const OpProfile& a, const OpProfile& b) { return a.total_us > b.total_us; });
  return rows;
}

}  // namespace kiln
