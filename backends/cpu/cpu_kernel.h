// How CPU kernels plug into the CPU backend. Each op family registers an
// entry: whether it runs a node, and which specialization (template instance)
// a node needs. The specialization is a pipeline: created once per key
// through the backend's PipelineCache and shared by every node with that key.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "backends/backend.h"
#include "graph/graph.h"
#include "graph/tensor_view.h"

namespace kiln::cpu {

struct KernelArgs {
  const Node* node = nullptr;
  absl::Span<const TensorView> inputs;   // absent optional inputs: data == nullptr
  absl::Span<const TensorView> outputs;  // contiguous
  int threads = 1;                       // OpenMP threads to use
};

using KernelFn = absl::Status (*)(const KernelArgs& args);

// A resolved CPU pipeline: the function for one specialization.
struct CpuPipeline {
  std::string key;  // e.g. "flash_attn[128,128,f16,mask=1]"
  KernelFn fn = nullptr;
};

struct CpuKernelEntry {
  std::string op;
  // Exact: yes only if `fn` of the selected pipeline runs this node.
  Support (*supports)(const Graph& graph, const Node& node) = nullptr;
  // The pipeline key and function for this node (cheap: no compiling).
  absl::StatusOr<CpuPipeline> (*select)(const Graph& graph, const Node& node) = nullptr;
};

// One per kernel family file in backends/cpu/.
void RegisterCpuElementwiseKernels(std::vector<CpuKernelEntry>& k);  // elementwise.cc
void RegisterCpuMatmulKernels(std::vector<CpuKernelEntry>& k);       // matmul.cc
void RegisterCpuNormKernels(std::vector<CpuKernelEntry>& k);         // norm.cc (+softmax)
void RegisterCpuLayoutKernels(std::vector<CpuKernelEntry>& k);       // layout.cc: gather,
                                                                      // concat, slice, reshape,
                                                                      // permute, transpose,
                                                                      // contiguous
void RegisterCpuRopeKernels(std::vector<CpuKernelEntry>& k);         // rope.cc
void RegisterCpuReduceKernels(std::vector<CpuKernelEntry>& k);       // reduce.cc
void RegisterCpuConvKernels(std::vector<CpuKernelEntry>& k);         // conv1d_causal.cc
void RegisterCpuWriteRowsKernels(std::vector<CpuKernelEntry>& k);    // write_rows.cc
void RegisterCpuFlashAttnKernels(std::vector<CpuKernelEntry>& k);    // flash_attn.cc
void RegisterCpuGatedDeltaNetKernels(std::vector<CpuKernelEntry>& k);// gated_delta_net.cc

}  // namespace kiln::cpu
