// Per-node timings gathered over runs, and their summary per op.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

// One node's time, summed over the profiled runs.
struct NodeProfile {
  int node = -1;
  std::string name;
  std::string op;
  std::string backend;
  int64_t count = 0;     // profiled executions
  double total_us = 0;   // summed over them
  double last_us = 0;    // the latest one
};

// All nodes of one op (on one backend), summed.
struct OpProfile {
  std::string op;
  std::string backend;
  int64_t count = 0;  // node executions
  double total_us = 0;
};

// Rows per (op, backend), the most expensive first; nodes never timed are left out.
std::vector<OpProfile> AggregateByOp(const std::vector<NodeProfile>& nodes);

}  // namespace kiln
