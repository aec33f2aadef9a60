// Runs a CPU kernel entry directly (supports + select + fn over host buffers,
// no backend object) and compares its outputs with the op's reference.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "backends/cpu/cpu_kernel.h"
#include "tests/backends/backend_test_util.h"

namespace kiln::testing_util {

// The flash_attn and gated_delta_net kernel entries.
inline const cpu::CpuKernelEntry* AttentionKernelEntry(absl::string_view op) {
  static const std::vector<cpu::CpuKernelEntry>* entries = [] {
    auto* k = new std::vector<cpu::CpuKernelEntry>;
    cpu::RegisterCpuFlashAttnKernels(*k);
    cpu::RegisterCpuGatedDeltaNetKernels(*k);
    return k;
  }();
  for (const auto& e : *entries) {
    if (e.op == op) return &e;
  }
  return nullptr;
}

// The view of input i of the instance's node (absent: data == nullptr).
inline TensorView InputView(OpInstance& inst, int i) {
  const Graph& g = inst.graph;
  const int id = g.nodes[0].inputs[i];
  if (id < 0) return TensorView{};
  const TensorInfo& t = g.tensors[id];
  return TensorView::Of(t, inst.host[g.StorageOf(id)].bytes.data() + t.offset);
}

struct KernelRun {
  std::string key;                // the selected pipeline's key
  std::vector<HostBytes> outputs;  // contiguous, one per node output
};

// Runs the node's CPU kernel with `threads`. Outputs start as NaN bytes (so
// unwritten elements show); an (input, output) pair in `alias` makes the
// output the input's memory (the input must be a contiguous base tensor).
inline absl::StatusOr<KernelRun> RunCpuKernel(OpInstance& inst, int threads,
                                              const std::vector<std::pair<int, int>>& alias = {}) {
  const Graph& g = inst.graph;
  const Node& node = g.nodes[0];
  const cpu::CpuKernelEntry* entry = AttentionKernelEntry(node.op);
  if (!entry) return absl::NotFoundError(absl::StrCat("no CPU kernel entry for ", node.op));
  const Support s = entry->supports(g, node);
  if (!s.ok) return absl::UnimplementedError(absl::StrCat("supports() says no: ", s.reason));
  auto pipeline = entry->select(g, node);
  if (!pipeline.ok()) return pipeline.status();

  std::vector<TensorView> in, out;
  for (size_t i = 0; i < node.inputs.size(); ++i) in.push_back(InputView(inst, static_cast<int>(i)));
  KernelRun run;
  run.key = pipeline->key;
  run.outputs.resize(node.outputs.size());
  for (size_t o = 0; o < node.outputs.size(); ++o) {
    const TensorInfo& t = g.tensors[node.outputs[o]];
    run.outputs[o].bytes.assign(std::max<int64_t>(1, ContiguousBytes(t.dtype, t.dims)), std::byte{0xff});
    out.push_back(TensorView::Of(t, run.outputs[o].bytes.data()));
  }
  for (auto [i, o] : alias) out[o].data = in[i].data;
  cpu::KernelArgs args;
  args.node = &node;
  args.inputs = in;
  args.outputs = out;
  args.threads = threads;
  if (auto st = pipeline->fn(args); !st.ok()) return st;
  // Aliased outputs live in the input's bytes: copy them out.
  for (auto [i, o] : alias) {
    const TensorInfo& t = g.tensors[node.outputs[o]];
    std::memcpy(run.outputs[o].bytes.data(), in[i].data, ContiguousBytes(t.dtype, t.dims));
  }
  return run;
}

// Runs the reference, then the kernel, and compares every output within
// OPS.md's tolerance. `key` receives the pipeline key.
inline ::testing::AssertionResult KernelMatchesReference(
    OpInstance& inst, int threads, const std::vector<std::pair<int, int>>& alias = {},
    std::string* key = nullptr, std::vector<HostBytes>* kernel_out = nullptr) {
  auto ref = RunReference(inst);  // before the kernel: it may write inputs in place
  if (!ref.ok()) return ::testing::AssertionFailure() << "reference: " << ref.status();
  auto got = RunCpuKernel(inst, threads, alias);
  if (!got.ok()) return ::testing::AssertionFailure() << "kernel: " << got.status();
  if (key) *key = got->key;
  const Graph& g = inst.graph;
  const Node& node = g.nodes[0];
  const double tol = Tolerance(node.op, ToleranceDType(g, node));
  for (size_t o = 0; o < node.outputs.size(); ++o) {
    const TensorInfo& t = g.tensors[node.outputs[o]];
    const Comparison cmp = Compare(TensorView::Of(t, got->outputs[o].bytes.data()),
                                   TensorView::Of(t, (*ref)[o].bytes.data()), tol);
    if (!cmp.ok) {
      return ::testing::AssertionFailure() << got->key << ": output " << o << " ('" << t.name
                                           << "'): " << cmp.error;
    }
  }
  if (kernel_out) *kernel_out = std::move(got->outputs);
  return ::testing::AssertionSuccess();
}

}  // namespace kiln::testing_util
