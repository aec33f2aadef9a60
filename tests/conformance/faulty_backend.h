// A test-only backend: the CPU backend with one deliberate fault on one op,
// to show that the conformance runner catches each kind of wrong backend.
#pragma once

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backends/backend.h"
#include "backends/registry.h"
#include "graph/tensor_view.h"
#include "tests/backends/forwarding_backend.h"

namespace kiln::conformance {

enum class Fault {
  kNone,
  kPerturb,        // output values scaled by 1.05
  kNaN,            // one output element NaN
  kOverrun,        // one byte written just past the first output
  kUnderrun,       // one byte written just before the first output
  kWriteInput,     // one byte of the first input changed
  kClaimThenFail,  // supports() yes, Execute fails
  kDecline,        // supports() no, with a reason
  kSwallowErrors,  // Execute reports success even when the kernel failed
  kAnonymousError, // errors lose the node's name
};

class FaultyBackend : public test::ForwardingBackend {
 public:
  FaultyBackend(std::unique_ptr<Backend> inner, std::string op, Fault fault)
      : ForwardingBackend(std::move(inner)), op_(std::move(op)), fault_(fault) {}

  static std::unique_ptr<FaultyBackend> OnCpu(std::string op, Fault fault) {
    auto cpu = CreateBackend("cpu");
    return cpu.ok() ? std::make_unique<FaultyBackend>(*std::move(cpu), std::move(op), fault) : nullptr;
  }

  absl::string_view name() const override { return "faulty"; }
  Support supports(const Graph& graph, const Node& node) const override {
    if (node.op == op_ && fault_ == Fault::kDecline) return Support::No("declined on purpose by the test");
    if (node.op == op_ && fault_ == Fault::kClaimThenFail) return Support::Yes();
    return inner_->supports(graph, node);
  }

  // The bindings of the last Prepare (to see what the runner bound).
  const Bindings& last_bindings() const { return last_bindings_; }

  absl::StatusOr<std::unique_ptr<PreparedSplit>> Prepare(const Split& split, const Bindings& bindings,
                                                         const PrepareOptions& options) override {
    last_bindings_ = bindings;
    auto p = std::make_unique<Prepared>();
    p->graph = split.graph;
    p->nodes = split.nodes;
    p->bindings = bindings;
    const bool claimed_only = fault_ == Fault::kClaimThenFail && TouchesOp(split);
    if (!claimed_only) {
      auto inner = inner_->Prepare(split, bindings, options);
      if (!inner.ok()) return inner.status();
      p->inner = *std::move(inner);
    }
    return std::unique_ptr<PreparedSplit>(std::move(p));
  }

  absl::StatusOr<SyncPoint> Execute(PreparedSplit& split, const ExecuteOptions& options) override {
    auto& p = static_cast<Prepared&>(split);
    if (!p.inner) return absl::InternalError("the kernel is missing (claimed on purpose by the test)");
    auto point = inner_->Execute(*p.inner, options);
    absl::Status st = point.status();
    if (st.ok()) st = inner_->Wait(*point);
    if (fault_ == Fault::kSwallowErrors) return ++points_;
    if (!st.ok() && fault_ == Fault::kAnonymousError) return absl::InternalError("something went wrong");
    if (!st.ok()) return st;
    for (int ni : p.nodes) {
      const Node& node = p.graph->nodes[ni];
      if (node.op == op_) Corrupt(p, node);
    }
    return ++points_;
  }
  absl::Status ReadTimings(PreparedSplit& split, std::vector<NodeTiming>* out) override {
    auto& p = static_cast<Prepared&>(split);
    return p.inner ? inner_->ReadTimings(*p.inner, out) : absl::OkStatus();
  }
  absl::StatusOr<SyncPoint> Flush() override {
    if (auto st = inner_->Flush(); !st.ok()) return st.status();
    return ++points_;
  }
  absl::Status Wait(SyncPoint) override { return absl::OkStatus(); }  // Execute waited

 private:
  struct Prepared : PreparedSplit {
    const Graph* graph = nullptr;
    std::vector<int> nodes;
    Bindings bindings;
    std::unique_ptr<PreparedSplit> inner;
  };

  bool TouchesOp(const Split& split) const {
    for (int ni : split.nodes) {
      if (split.graph->nodes[ni].op == op_) return true;
    }
    return false;
  }

  // The host address and view of tensor `id` (CPU buffers are host memory).
  static TensorView ViewOf(const Prepared& p, int id) {
    const Binding& b = p.bindings.tensors[id];
    return TensorView::Of(p.graph->tensors[id], b.buffer->host_data() + b.offset);
  }

  void Corrupt(const Prepared& p, const Node& node) const {
    const TensorView out = ViewOf(p, node.outputs[0]);
    const size_t bytes = static_cast<size_t>(ContiguousBytes(out.dtype, p.graph->tensors[node.outputs[0]].dims));
    switch (fault_) {
      case Fault::kPerturb:
        ForEachIndex(out.rank, out.dims, [&](const int64_t* idx) {
          StoreElement(out, idx, LoadElement(out, idx) * 1.05);
        });
        break;
      case Fault::kNaN: {
        int64_t idx[kMaxRank] = {};
        StoreElement(out, idx, std::nan(""));
        break;
      }
      case Fault::kOverrun: out.data[bytes] = ~out.data[bytes]; break;
      case Fault::kUnderrun: out.data[-1] = ~out.data[-1]; break;
      case Fault::kWriteInput: {
        const TensorView in = ViewOf(p, node.inputs[0]);
        in.data[0] = ~in.data[0];
        break;
      }
      default: break;
    }
  }

  std::string op_;
  Fault fault_;
  SyncPoint points_ = 0;
  Bindings last_bindings_;
};

}  // namespace kiln::conformance
