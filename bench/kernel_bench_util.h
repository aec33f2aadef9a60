// Runs one CPU kernel over host buffers for benchmarks: a one-node graph built
// with GraphBuilder, random inputs, and the kernel entry's selected pipeline
// called directly (no backend or scheduler in the timing).
#pragma once

#include <omp.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backends/cpu/cpu_kernel.h"
#include "benchmark/benchmark.h"
#include "graph/builder.h"
#include "graph/tensor_view.h"

namespace kiln::bench {

// One input of the benchmarked node: dtype, dims, random values in [lo, hi]
// (absent: an optional input left out).
struct BenchInput {
  DType dtype = DType::kF32;
  std::vector<int64_t> dims;
  float lo = -1, hi = 1;
  bool absent = false;
};

class KernelRunner {
 public:
  KernelRunner(const std::string& op, const std::vector<BenchInput>& inputs, Attrs attrs) {
    GraphBuilder b("bench");
    std::vector<Tensor> ins;
    for (size_t i = 0; i < inputs.size(); ++i) {
      ins.push_back(inputs[i].absent ? Tensor{}
                                     : b.Input(absl::StrCat("in", i), inputs[i].dtype, inputs[i].dims));
    }
    for (Tensor t : b.Op(op, ins, std::move(attrs), "node")) b.Output(t);
    auto graph = b.Build();
    if (!graph.ok()) {
      error_ = std::string(graph.status().message());
      return;
    }
    graph_ = std::move(*graph);
    const Node& node = graph_.nodes[0];
    std::vector<cpu::CpuKernelEntry> entries;
    cpu::RegisterCpuFlashAttnKernels(entries);
    cpu::RegisterCpuGatedDeltaNetKernels(entries);
    for (const auto& e : entries) {
      if (e.op != op) continue;
      auto p = e.select(graph_, node);
      if (!p.ok()) {
        error_ = std::string(p.status().message());
        return;
      }
      pipeline_ = *p;
    }
    if (!pipeline_.fn) {
      error_ = "no kernel";
      return;
    }
    std::mt19937 rng(1);
    storage_.resize(graph_.tensors.size());
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const int id = node.inputs[i];
      if (id < 0) {
        views_in_.push_back(TensorView{});
        continue;
      }
      const TensorView v = Allocate(id);
      Fill(v, inputs[i], rng);
      views_in_.push_back(v);
    }
    for (int id : node.outputs) views_out_.push_back(Allocate(id));
  }

  const std::string& error() const { return error_; }
  const std::string& key() const { return pipeline_.key; }
  TensorView input(int i) const { return views_in_[i]; }

  void Run(benchmark::State& state) {
    cpu::KernelArgs args;
    args.node = &graph_.nodes[0];
    args.inputs = views_in_;
    args.outputs = views_out_;
    args.threads = omp_get_max_threads();
    auto st = pipeline_.fn(args);
    if (!st.ok()) state.SkipWithError(std::string(st.message()).c_str());
  }

 private:
  TensorView Allocate(int id) {
    const TensorInfo& t = graph_.tensors[id];
    storage_[id].assign(ContiguousBytes(t.dtype, t.dims) + 64, std::byte{0});
    return TensorView::Of(t, storage_[id].data());
  }

  static void Fill(const TensorView& v, const BenchInput& in, std::mt19937& rng) {
    if (v.dtype == DType::kQ8_0) {
      std::uniform_int_distribution<int> q(-127, 127);
      int64_t blocks = v.numel() / kQ8BlockSize;
      for (int64_t b = 0; b < blocks; ++b) {
        std::byte* blk = v.data + b * kQ8BlockBytes;
        const uint16_t h = F32ToF16(0.01f);
        std::memcpy(blk, &h, 2);
        for (int i = 0; i < kQ8BlockSize; ++i) blk[2 + i] = static_cast<std::byte>(q(rng));
      }
      return;
    }
    std::uniform_real_distribution<double> u(in.lo, in.hi);
    ForEachIndex(v.rank, v.dims, [&](const int64_t* idx) { StoreElement(v, idx, u(rng)); });
  }

  Graph graph_;
  cpu::CpuPipeline pipeline_;
  std::vector<std::vector<std::byte>> storage_;
  std::vector<TensorView> views_in_, views_out_;
  std::string error_;
};

}  // namespace kiln::bench
