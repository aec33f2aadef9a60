// The cost of running a prepared graph, apart from its kernels: a tiny graph
// (three adds of 8 floats) run through Executable::Run(), through the CPU
// backend's Execute() on a prepared split, and as the three kernels called
// directly. The differences are the per-run overhead of the scheduler and of
// the backend (ns per run: the Time column).
#include <memory>
#include <vector>

#include "backends/cpu/cpu_kernel.h"
#include "backends/cpu/kernel_table.h"
#include "backends/registry.h"
#include "benchmark/benchmark.h"
#include "graph/builder.h"
#include "scheduler/executor.h"

namespace kiln::bench {
namespace {

Graph ThreeAdds() {
  GraphBuilder b("three_adds");
  Tensor x = b.Input("x", DType::kF32, {8});
  Tensor a = b.Op1("add", {x, x});
  Tensor c = b.Op1("add", {a, x});
  b.Output(b.Op1("add", {c, a}, {}, "y"));
  auto g = b.Build();
  return g.ok() ? *std::move(g) : Graph{};
}

std::shared_ptr<Backend> Cpu() {
  BackendOptions options;
  options.threads = 1;
  auto b = CreateBackend("cpu", options);
  return b.ok() ? std::shared_ptr<Backend>(*std::move(b)) : nullptr;
}

void BM_ExecutableRun(benchmark::State& state) {
  ExecutableOptions options;
  options.profile = state.range(0) != 0;
  auto exe = Executable::Create(ThreeAdds(), {Cpu()}, options);
  if (!exe.ok()) return state.SkipWithError(std::string(exe.status().message()).c_str());
  const std::vector<float> x(8, 1.f);
  if (!(*exe)->SetInputBytes("x", x.data(), 32).ok()) return state.SkipWithError("SetInput failed");
  for (auto _ : state) {
    if (!(*exe)->Run().ok()) return state.SkipWithError("Run failed");
  }
}
BENCHMARK(BM_ExecutableRun)->ArgName("profile")->Arg(0)->Arg(1);

// The backend alone: one prepared split over buffers bound by hand.
void BM_BackendExecute(benchmark::State& state) {
  const Graph g = ThreeAdds();
  std::shared_ptr<Backend> cpu = Cpu();
  std::vector<std::unique_ptr<Buffer>> buffers;
  Bindings bindings;
  for (const TensorInfo& t : g.tensors) {
    auto buffer = cpu->Allocate(static_cast<size_t>(ContiguousBytes(t.dtype, t.dims)), BufferUsage::kArena, "test");
    if (!buffer.ok()) return state.SkipWithError("Allocate failed");
    bindings.tensors.push_back({buffer->get(), 0});
    buffers.push_back(*std::move(buffer));
  }
  Split split{&g, {0, 1, 2}};
  auto prepared = cpu->Prepare(split, bindings, PrepareOptions{});
  if (!prepared.ok()) return state.SkipWithError(std::string(prepared.status().message()).c_str());
  for (auto _ : state) {
    if (!RunPrepared(*cpu, **prepared).ok()) return state.SkipWithError("Execute failed");
  }
}
BENCHMARK(BM_BackendExecute);

// The kernels alone: each node's selected pipeline function, called in turn.
void BM_KernelsDirect(benchmark::State& state) {
  const Graph g = ThreeAdds();
  std::vector<std::vector<float>> memory;
  for (const TensorInfo& t : g.tensors) memory.emplace_back(static_cast<size_t>(t.numel()), 1.f);
  struct Call {
    cpu::KernelFn fn;
    const Node* node;
    std::vector<TensorView> inputs, outputs;
  };
  std::vector<Call> calls;
  auto view = [&](int id) {
    return TensorView::Of(g.tensors[id], reinterpret_cast<std::byte*>(memory[id].data()));
  };
  for (const Node& node : g.nodes) {
    auto pipeline = cpu::FindCpuKernel(node.op)->select(g, node);
    if (!pipeline.ok()) return state.SkipWithError("select failed");
    Call call{pipeline->fn, &node, {}, {}};
    for (int id : node.inputs) call.inputs.push_back(view(id));
    for (int id : node.outputs) call.outputs.push_back(view(id));
    calls.push_back(std::move(call));
  }
  for (auto _ : state) {
    for (const Call& c : calls) {
      cpu::KernelArgs args;
      args.node = c.node;
      args.inputs = c.inputs;
      args.outputs = c.outputs;
      args.threads = 1;
      if (!c.fn(args).ok()) return state.SkipWithError("kernel failed");
    }
    benchmark::DoNotOptimize(memory.back().data());
  }
}
BENCHMARK(BM_KernelsDirect);

}  // namespace
}  // namespace kiln::bench
