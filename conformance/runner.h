// Runs conformance cases on backends through the Backend interface, exactly as
// the scheduler would (a one-node graph, buffers, Upload, Prepare, Execute,
// Wait, Download), and judges each against the op's reference:
//   declined  supports() said no (with its reason);
//   passed    every output matches the reference within OPS.md's tolerance
//             (ops/compare.h: NMSE, inf/NaN positions), no byte outside the
//             outputs changed (guard regions around every buffer, inputs
//             intact), and for an expect_error case the backend reported an
//             error naming the node;
//   failed    anything else, an error from any step included.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backends/backend.h"
#include "conformance/case.h"
#include "graph/graph.h"

namespace kiln::conformance {

// Bytes of a guard region before (kGuardFront, which also keeps the tensor
// 256-byte aligned) and after (kGuardBack) every buffer the runner allocates.
inline constexpr size_t kGuardFront = 256;
inline constexpr size_t kGuardBack = 4096;

using HostBytes = std::vector<std::byte>;

// A case made concrete: its one-node graph and the bytes of every graph input
// (views are windows into their base's bytes).
struct Instance {
  Graph graph;
  std::vector<HostBytes> host;  // by tensor id; empty for non-inputs
};

// The case's graph alone (no values): checks that the case is valid.
absl::StatusOr<Graph> BuildCaseGraph(const Case& c);
absl::StatusOr<Instance> Instantiate(const Case& c);

// The reference outputs (contiguous), or the reference's error.
absl::StatusOr<std::vector<HostBytes>> RunReference(const Instance& inst);

enum class Verdict { kPassed, kFailed, kDeclined };
const char* VerdictName(Verdict v);  // "passed", "failed", "declined"

struct CaseResult {
  Verdict verdict = Verdict::kFailed;
  double nmse = -1;       // worst over the outputs; -1 when not compared
  double tolerance = 0;
  std::string error;      // failed: what went wrong
  std::string reason;     // declined: the backend's reason
  double backend_ms = 0;  // Prepare + Execute + Wait
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
