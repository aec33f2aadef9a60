// Runs one op on a backend the way the scheduler would (a one-node graph,
// buffers, upload, Prepare, Execute, download) and checks every output
// against the op's reference with OPS.md's tolerance.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/backend.h"
#include "graph/builder.h"
#include "graph/tensor_view.h"
#include "gtest/gtest.h"
#include "ops/compare.h"
#include "ops/registry.h"

namespace kiln::testing_util {

// One input of a test case.
struct TestInput {
  DType dtype = DType::kF32;
  std::vector<int64_t> dims;
  double lo = -1, hi = 1;  // value range (i32: inclusive integers)
  bool view = false;       // a strided window into a larger, NaN-padded base
  bool absent = false;     // an optional input left out
  std::vector<double> values;  // if set: these values, repeated, instead of random ones
  // A custom view (when base_dims is set): base dims, byte strides, offset.
  std::vector<int64_t> base_dims, strides;
  int64_t offset = 0;
};

inline TestInput In(DType dtype, std::vector<int64_t> dims, double lo = -1, double hi = 1) {
  return {dtype, std::move(dims), lo, hi};
}
inline TestInput ViewIn(DType dtype, std::vector<int64_t> dims, double lo = -1, double hi = 1) {
  return {dtype, std::move(dims), lo, hi, true};
}
inline TestInput Absent() { return {DType::kF32, {1}, 0, 0, false, true}; }
// A view with the two outermost dims swapped in memory (rank >= 2).
inline TestInput SwappedIn(DType dtype, std::vector<int64_t> dims, double lo = -1, double hi = 1) {
  TestInput t{dtype, dims, lo, hi};
  t.base_dims = dims;
  std::swap(t.base_dims[0], t.base_dims[1]);
  t.strides = ContiguousStrides(dtype, t.base_dims);
  std::swap(t.strides[0], t.strides[1]);
  return t;
}
// A view that repeats one row `rows` times (stride 0 on the outer dim).
inline TestInput RepeatedRowIn(DType dtype, int64_t rows, int64_t cols, double lo = -1, double hi = 1) {
  TestInput t{dtype, {rows, cols}, lo, hi};
  t.base_dims = {cols};
  t.strides = {0, ElementSize(dtype)};
  return t;
}

struct OpCase {
  std::string op;
  std::vector<TestInput> inputs;
  Attrs attrs;
  // (input, output): the output is bound to the input's buffer (in place).
  std::vector<std::pair<int, int>> alias;
};

inline std::string Describe(const OpCase& c) {
  std::vector<std::string> ins;
  for (const TestInput& t : c.inputs) {
    if (t.absent) {
      ins.push_back("-");
      continue;
    }
    ins.push_back(absl::StrCat(DTypeName(t.dtype), ShapeString(t.dims), t.view ? "(view)" : "",
                               t.base_dims.empty() ? "" : absl::StrCat("(strides ", ShapeString(t.strides), ")")));
  }
  std::vector<std::string> attrs;
  for (const auto& [k, v] : c.attrs) attrs.push_back(absl::StrCat(k, "=", AttrToString(v)));
  return absl::StrCat(c.op, "(", absl::StrJoin(ins, ", "), ") {", absl::StrJoin(attrs, ", "), "}",
                      c.alias.empty() ? "" : " in place");
}

// Host bytes of a graph tensor (a base; views point into their base's bytes).
struct HostBytes {
  std::vector<std::byte> bytes;
};

// Random values in `t` (a view into host memory), within [lo, hi].
inline void FillRandom(const TensorView& t, double lo, double hi, std::mt19937& rng) {
  if (t.dtype == DType::kQ8_0) {
    std::uniform_int_distribution<int> q(-127, 127);
    std::uniform_real_distribution<float> scale(0.002f, 0.02f);
    std::array<int64_t, kMaxRank> outer = t.dims;
    outer[t.rank - 1] = 1;
    ForEachIndex(t.rank, outer, [&](const int64_t* idx) {
      std::byte* row = t.row(idx);
      for (int64_t b = 0; b < t.dim(-1) / kQ8BlockSize; ++b) {
        std::byte* blk = row + b * kQ8BlockBytes;
        const uint16_t h = F32ToF16(scale(rng));
        std::memcpy(blk, &h, 2);
        for (int i = 0; i < kQ8BlockSize; ++i) blk[2 + i] = static_cast<std::byte>(static_cast<int8_t>(q(rng)));
      }
    });
    return;
  }
  if (t.dtype == DType::kI32) {
    std::uniform_int_distribution<int64_t> u(static_cast<int64_t>(lo), static_cast<int64_t>(hi));
    ForEachIndex(t.rank, t.dims, [&](const int64_t* idx) { StoreElement(t, idx, static_cast<double>(u(rng))); });
    return;
  }
  std::uniform_real_distribution<double> u(lo, hi);
  ForEachIndex(t.rank, t.dims, [&](const int64_t* idx) { StoreElement(t, idx, u(rng)); });
}

// A built one-node graph with random host data for its inputs.
struct OpInstance {
  Graph graph;
  std::vector<HostBytes> host;  // by tensor id; empty for views
};

inline absl::StatusOr<OpInstance> MakeInstance(const OpCase& c, uint32_t seed) {
  GraphBuilder b("test");
  std::vector<Tensor> ins;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const TestInput& in = c.inputs[i];
    if (in.absent) {
      ins.push_back(Tensor{});
      continue;
    }
    const std::string name = absl::StrCat("in", i);
    if (!in.base_dims.empty()) {
      Tensor base = b.Input(absl::StrCat(name, "_base"), in.dtype, in.base_dims);
      ins.push_back(b.View(base, in.dims, in.strides, in.offset, name));
      continue;
    }
    if (!in.view) {
      ins.push_back(b.Input(name, in.dtype, in.dims));
      continue;
    }
    // Base: every dim one longer (the innermost by 3 elements, or a q8_0
    // block); the view starts at index 1 of each outer dim and 2 (or one
    // block) into each row.
    std::vector<int64_t> base_dims = in.dims;
    for (size_t d = 0; d + 1 < base_dims.size(); ++d) base_dims[d] += 1;
    const bool q8 = in.dtype == DType::kQ8_0;
    base_dims.back() += q8 ? kQ8BlockSize : 3;
    Tensor base = b.Input(absl::StrCat(name, "_base"), in.dtype, base_dims);
    const std::vector<int64_t> strides = ContiguousStrides(in.dtype, base_dims);
    int64_t offset = q8 ? kQ8BlockBytes : 2 * ElementSize(in.dtype);
    for (size_t d = 0; d + 1 < base_dims.size(); ++d) offset += strides[d];
    ins.push_back(b.View(base, in.dims, strides, offset, name));
  }
  std::vector<Tensor> outs = b.Op(c.op, ins, c.attrs, "node");
  for (Tensor t : outs) b.Output(t);
  auto graph = b.Build();
  if (!graph.ok()) return graph.status();
  OpInstance inst;
  inst.graph = std::move(*graph);
  inst.host.resize(inst.graph.tensors.size());
  std::mt19937 rng(seed);
  for (size_t id = 0; id < inst.graph.tensors.size(); ++id) {
    const TensorInfo& t = inst.graph.tensors[id];
    if (t.is_view()) continue;
    // 0xff bytes: NaN for float types, -1 for i32 (an out-of-range id), so
    // padding a kernel reads by mistake, or output it leaves unwritten, shows.
    inst.host[id].bytes.assign(std::max<int64_t>(1, ContiguousBytes(t.dtype, t.dims)), std::byte{0xff});
  }
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (c.inputs[i].absent) continue;
    const int id = inst.graph.nodes[0].inputs[i];
    const TensorInfo& t = inst.graph.tensors[id];
    std::byte* base = inst.host[inst.graph.StorageOf(id)].bytes.data() + t.offset;
    const TensorView v = TensorView::Of(t, base);
    const std::vector<double>& values = c.inputs[i].values;
    if (values.empty()) {
      FillRandom(v, c.inputs[i].lo, c.inputs[i].hi, rng);
    } else {
      size_t k = 0;
      ForEachIndex(v.rank, v.dims, [&](const int64_t* idx) { StoreElement(v, idx, values[k++ % values.size()]); });
    }
  }
  return inst;
}

// The reference outputs (contiguous) of an instance.
inline absl::StatusOr<std::vector<HostBytes>> RunReference(const OpInstance& inst) {
  const Graph& g = inst.graph;
  const Node& node = g.nodes[0];
  std::vector<TensorView> in, out;
  for (int id : node.inputs) {
    if (id < 0) { in.push_back(TensorView{}); continue; }
    const TensorInfo& t = g.tensors[id];
    auto* base = const_cast<std::byte*>(inst.host[g.StorageOf(id)].bytes.data());
    in.push_back(TensorView::Of(t, base + t.offset));
  }
  std::vector<HostBytes> result(node.outputs.size());
  for (size_t o = 0; o < node.outputs.size(); ++o) {
    const TensorInfo& t = g.tensors[node.outputs[o]];
    result[o].bytes.assign(std::max<int64_t>(1, ContiguousBytes(t.dtype, t.dims)), std::byte{0});
    out.push_back(TensorView::Of(t, result[o].bytes.data()));
  }
  const OpSchema* schema = FindOp(node.op);
  if (auto st = schema->reference(node, in, out); !st.ok()) return st;
  return result;
}

// Runs the instance's node on `backend`; returns its outputs' bytes.
inline absl::StatusOr<std::vector<HostBytes>> RunOnBackend(Backend& backend, const OpInstance& inst,
                                                           const std::vector<std::pair<int, int>>& alias = {},
                                                           std::vector<NodeTiming>* timings = nullptr) {
  const Graph& g = inst.graph;
  const Node& node = g.nodes[0];
  std::vector<std::unique_ptr<Buffer>> buffers(g.tensors.size());
  Bindings bindings;
  bindings.tensors.resize(g.tensors.size());
  for (size_t id = 0; id < g.tensors.size(); ++id) {
    const TensorInfo& t = g.tensors[id];
    if (t.is_view()) continue;
    bool aliased = false;
    for (auto [i, o] : alias) aliased |= node.outputs[o] == static_cast<int>(id);
    if (aliased) continue;
    auto buf = backend.Allocate(inst.host[id].bytes.size(), BufferUsage::kArena, "test");
    if (!buf.ok()) return buf.status();
    buffers[id] = std::move(*buf);
    bindings.tensors[id] = {buffers[id].get(), 0};
    if (auto st = backend.Upload(*buffers[id], 0, inst.host[id].bytes.data(), inst.host[id].bytes.size()); !st.ok()) {
      return st;
    }
  }
  for (auto [i, o] : alias) bindings.tensors[node.outputs[o]] = bindings.tensors[node.inputs[i]];
  for (size_t id = 0; id < g.tensors.size(); ++id) {
    const TensorInfo& t = g.tensors[id];
    if (!t.is_view()) continue;
    bindings.tensors[id] = bindings.tensors[t.view_of];
    bindings.tensors[id].offset += t.offset;
  }
  Split split{&g, {0}};
  auto prepared = backend.Prepare(split, bindings, PrepareOptions{});
  if (!prepared.ok()) return prepared.status();
  if (auto st = RunPrepared(backend, **prepared, timings); !st.ok()) return st;
  std::vector<HostBytes> result(node.outputs.size());
  for (size_t o = 0; o < node.outputs.size(); ++o) {
    const TensorInfo& t = g.tensors[node.outputs[o]];
    result[o].bytes.resize(std::max<int64_t>(1, ContiguousBytes(t.dtype, t.dims)));
    const Binding& bind = bindings.tensors[node.outputs[o]];
    if (auto st = backend.Download(*bind.buffer, bind.offset, result[o].bytes.data(), result[o].bytes.size());
        !st.ok()) {
      return st;
    }
  }
  return result;
}

// The dtype whose tolerance applies: the least precise of the node's tensors.
inline DType ToleranceDType(const Graph& g, const Node& node) {
  DType d = DType::kF32;
  for (const std::vector<int>* ids : {&node.inputs, &node.outputs}) {
    for (int id : *ids) {
      if (id < 0) continue;
      const DType t = g.tensors[id].dtype;
      if (t == DType::kF16 || t == DType::kBF16 || t == DType::kQ8_0) d = t;
    }
  }
  return d;
}

// Runs `c` on the backend and the reference and compares every output.
inline ::testing::AssertionResult MatchesReference(Backend& backend, const OpCase& c, uint32_t seed = 1) {
  auto inst = MakeInstance(c, seed);
  if (!inst.ok()) return ::testing::AssertionFailure() << Describe(c) << ": " << inst.status();
  auto ref = RunReference(*inst);
  if (!ref.ok()) return ::testing::AssertionFailure() << Describe(c) << ": reference: " << ref.status();
  auto got = RunOnBackend(backend, *inst, c.alias);
  if (!got.ok()) return ::testing::AssertionFailure() << Describe(c) << ": backend: " << got.status();
  const Node& node = inst->graph.nodes[0];
  const double tol = Tolerance(c.op, ToleranceDType(inst->graph, node));
  for (size_t o = 0; o < node.outputs.size(); ++o) {
    const TensorInfo& t = inst->graph.tensors[node.outputs[o]];
    const Comparison cmp = Compare(TensorView::Of(t, (*got)[o].bytes.data()),
                                   TensorView::Of(t, (*ref)[o].bytes.data()), tol);
    if (!cmp.ok) {
      return ::testing::AssertionFailure() << Describe(c) << ": output " << o << " ('" << t.name
                                           << "'): " << cmp.error;
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace kiln::testing_util
