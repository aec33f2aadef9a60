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
  kSecondRunDiffers,  // the second Execute of a prepared split scales the output by 1.05
  kSkipSecondRun,     // the second Execute of a prepared split does nothing
  kReverseOrder,      // a split of several nodes runs them last to first
  kNoTimings,         // ReadTimings gives no entries
  kNegativeTimings,   // ReadTimings gives negative durations
  kDirtyAllocate,     // not a fault: new buffers hold garbage (contents start undefined)
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

  // limits().buffer_alignment reported as `alignment` (0: the CPU's).
  void set_alignment(size_t alignment) { alignment_ = alignment; }
  BackendLimits limits() const override {
    BackendLimits l = inner_->limits();
    if (alignment_) l.buffer_alignment = alignment_;
    return l;
  }
  absl::StatusOr<std::unique_ptr<Buffer>> Allocate(size_t n, BufferUsage usage, absl::string_view label) override {
    auto b = inner_->Allocate(n, usage, label);
    if (b.ok() && fault_ == Fault::kDirtyAllocate && (*b)->host_data()) std::memset((*b)->host_data(), 0x5a, n);
    return b;
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
    if (fault_ == Fault::kReverseOrder && split.nodes.size() > 1) {
      for (int ni : split.nodes) {
        auto inner = inner_->Prepare(Split{split.graph, {ni}}, bindings, options);
        if (!inner.ok()) return inner.status();
        p->per_node.push_back(*std::move(inner));
      }
    } else if (!claimed_only) {
      auto inner = inner_->Prepare(split, bindings, options);
      if (!inner.ok()) return inner.status();
      p->inner = *std::move(inner);
    }
    return std::unique_ptr<PreparedSplit>(std::move(p));
  }

  absl::StatusOr<SyncPoint> Execute(PreparedSplit& split, const ExecuteOptions& options) override {
    auto& p = static_cast<Prepared&>(split);
    ++p.runs;
    if (!p.per_node.empty()) {
      for (auto it = p.per_node.rbegin(); it != p.per_node.rend(); ++it) {
        auto point = inner_->Execute(**it, options);
        if (!point.ok()) return point.status();
        if (auto st = inner_->Wait(*point); !st.ok()) return st;
      }
      return ++points_;
    }
    if (!p.inner) return absl::InternalError("the kernel is missing (claimed on purpose by the test)");
    if (fault_ == Fault::kSkipSecondRun && p.runs > 1) return ++points_;
    auto point = inner_->Execute(*p.inner, options);
    absl::Status st = point.status();
    if (st.ok()) st = inner_->Wait(*point);
    if (fault_ == Fault::kSwallowErrors) return ++points_;
    if (!st.ok() && fault_ == Fault::kAnonymousError) return absl::InternalError("something went wrong");
    if (!st.ok()) return st;
    for (int ni : p.nodes) {
      const Node& node = p.graph->nodes[ni];
      if (node.op == op_) Corrupt(p, node, p.runs);
    }
    return ++points_;
  }
  absl::Status ReadTimings(PreparedSplit& split, std::vector<NodeTiming>* out) override {
    auto& p = static_cast<Prepared&>(split);
    if (fault_ == Fault::kNoTimings) return absl::OkStatus();
    const size_t first = out->size();
    for (auto& one : p.per_node) {
      if (auto st = inner_->ReadTimings(*one, out); !st.ok()) return st;
    }
    if (p.inner) {
      if (auto st = inner_->ReadTimings(*p.inner, out); !st.ok()) return st;
    }
    if (fault_ == Fault::kNegativeTimings) {
      for (size_t i = first; i < out->size(); ++i) (*out)[i].duration_us = -1;
    }
    return absl::OkStatus();
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
    std::vector<std::unique_ptr<PreparedSplit>> per_node;  // kReverseOrder
    int runs = 0;  // Executes so far
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

  void Corrupt(const Prepared& p, const Node& node, int run) const {
    const TensorView out = ViewOf(p, node.outputs[0]);
    const size_t bytes = static_cast<size_t>(ContiguousBytes(out.dtype, p.graph->tensors[node.outputs[0]].dims));
    Fault fault = fault_;
    if (fault == Fault::kSecondRunDiffers) fault = run > 1 ? Fault::kPerturb : Fault::kNone;
    switch (fault) {
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
  size_t alignment_ = 0;
  Bindings last_bindings_;
};

}  // namespace kiln::conformance
