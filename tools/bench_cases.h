// The cases of `kiln bench`: each a graph of one node (flash_attn,
// gated_delta_net or linear) with its input values, and the work one run
// does (FLOPs, bytes that must come from memory), from a map of k=v
// parameters. Backend-agnostic: nothing here knows which backend runs it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "graph/graph.h"
#include "scheduler/host_tensor.h"

namespace kiln::tools {

using CaseParams = std::map<std::string, std::string, std::less<>>;

// A named case of an op family ("fa", "gdn", "linear").
struct BenchCaseSpec {
  std::string op;
  std::string name;  // "pp512@d1024"; "custom" for --case
  CaseParams params;
};

struct BuiltCase {
  Graph graph;
  std::vector<std::pair<std::string, HostTensor>> inputs;  // every graph input, by name
  double flops = 0;         // per run (an FMA counts 2)
  double bytes = 0;         // per run: what must be read (and written) at least once
  bool memory_bound = false;  // decode-like: read against bandwidth, else against FMA peak
  std::string shape;        // canonical k=v list
};

// Params of `op` with every key filled in (defaults for those not given);
// unknown keys and bad values are errors naming them.
absl::StatusOr<CaseParams> CompleteParams(absl::string_view op, const CaseParams& given);
// Parses "k=v,k=v".
absl::StatusOr<CaseParams> ParseCaseParams(absl::string_view text);

absl::StatusOr<BuiltCase> BuildCase(absl::string_view op, const CaseParams& params, uint64_t seed);

// The default table of an op family: `quick` is one small case per op (the
// smoke test), `full` adds the slow ones (prefill at 32768 cells).
std::vector<BenchCaseSpec> DefaultCases(absl::string_view op, bool quick, bool full);

}  // namespace kiln::tools
