// Runs conformance cases on backends through the Backend interface, as the
// executor would (the case's graph as one split; Allocate with a usage and a
// label, Upload/Fill, Flush, Wait, Prepare, then twice: Execute, Wait,
// Download; inputs uploaded and outputs refilled before each run), and judges
// each run against the reference (each node's reference applied in order):
//   declined  supports() said no (with its reason);
//   passed    every output matches the reference within OPS.md's tolerance
//             (ops/compare.h: NMSE, inf/NaN positions), no byte outside the
//             outputs changed (guard regions around every buffer, inputs
//             intact), and for an expect_error case the backend reported an
//             error naming the node;
//             both runs match, the timed one (the first) gives one timing
//             per node (ReadTimings after the Wait, durations >= 0);
//   failed    anything else, an error from any step included.
// A chained case (Case::chain) binds its intermediates into one arena buffer
// laid out like the executor's memory plan (dead intermediates' bytes reused,
// offsets multiples of limits().buffer_alignment), so a backend that reorders
// the nodes of a split or overlaps them without honouring byte-range hazards
// fails.
#pragma once

#include <cstddef>
#include <functional>
#include <utility>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backends/backend.h"
#include "conformance/case.h"
#include "graph/graph.h"

namespace kiln::conformance {

// Bytes of a guard region before (at least kGuardFront, see GuardFront) and
// after (kGuardBack) every buffer the runner allocates.
inline constexpr size_t kGuardFront = 256;
// The front guard on `backend`: kGuardFront rounded up to a multiple of
// limits().buffer_alignment, so that the tensor after it starts aligned.
size_t GuardFront(const Backend& backend);
inline constexpr size_t kGuardBack = 4096;

using HostBytes = std::vector<std::byte>;

// A case made concrete: its graph (one node, or a chain's nodes) and the bytes
// of every graph input (views are windows into their base's bytes).
struct Instance {
  Graph graph;
  std::vector<HostBytes> host;  // by tensor id; empty for non-inputs
  std::vector<int> inputs;      // the tensor id of each case input; -1 absent
  std::vector<std::pair<int, int>> aliases;  // (input id, output id) run in place
};

// The case's graph alone (no values): checks that the case is valid.
absl::StatusOr<Graph> BuildCaseGraph(const Case& c);
absl::StatusOr<Instance> Instantiate(const Case& c);

// The reference outputs (contiguous, in graph output order), or the
// reference's error.
absl::StatusOr<std::vector<HostBytes>> RunReference(const Instance& inst);

enum class Verdict { kPassed, kFailed, kDeclined };
const char* VerdictName(Verdict v);  // "passed", "failed", "declined"

struct CaseResult {
  Verdict verdict = Verdict::kFailed;
  double nmse = -1;       // worst over the outputs; -1 when not compared
  double tolerance = 0;
  std::string error;      // failed: what went wrong
  std::string reason;     // declined: the backend's reason
  double compile_ms = 0;  // Prepare (pipelines compiled or found)
  double run_ms = 0;      // Execute + Wait of the last run (the second, untimed)
  double reference_ms = 0;  // the reference's time (RunSuite; the same for every backend)
};

// Judges an instantiated case on `backend`; `reference` is RunReference's
// result (an error is expected exactly for expect_error cases). Asks
// supports() first: a declined case does not run.
CaseResult RunOnBackend(Backend& backend, const Case& c, const Instance& inst,
                        const absl::StatusOr<std::vector<HostBytes>>& reference);

// Instantiate + reference + RunOnBackend, for one case and one backend.
CaseResult RunCase(Backend& backend, const Case& c);

struct Progress {
  size_t done = 0, total = 0;
  size_t failed = 0;           // over all backends so far
  const Case* last = nullptr;  // the case just finished
};

struct SuiteOptions {
  // Worker threads making inputs and references in parallel; the backends
  // see one case at a time whatever this is.
  int threads = 2;
  std::function<void(const Progress&)> progress;  // called after each case
};

// results[case][backend], for every case on every backend.
std::vector<std::vector<CaseResult>> RunSuite(const std::vector<Case>& cases,
                                              const std::vector<Backend*>& backends,
                                              const SuiteOptions& options = {});

}  // namespace kiln::conformance
