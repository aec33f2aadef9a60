// Seeded random DAGs for scheduler tests: elementwise (with NumPy
// broadcasting), unary, matmul/linear, norms and softmax over f32 tensors of
// mixed shapes, with constants, several inputs and strided views (of inputs,
// node outputs and constants) read by later nodes.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/builder.h"
#include "ops/broadcast.h"
#include "scheduler/host_tensor.h"

namespace kiln::test {

struct RandomGraph {
  Graph graph;
  std::map<std::string, HostTensor> inputs;  // a value for every graph input
};

// The ops a random graph draws from.
inline const std::vector<std::string>& RandomGraphOps() {
  static const std::vector<std::string> ops = {"add",    "sub",     "mul",    "neg",      "silu",
                                               "tanh",   "sigmoid", "matmul", "linear",   "rms_norm",
                                               "layer_norm", "softmax"};
  return ops;
}

class RandomGraphMaker {
 public:
  explicit RandomGraphMaker(uint32_t seed) : rng_(seed), b_(absl::StrCat("random_", seed)) {}

  absl::StatusOr<RandomGraph> Make(int num_nodes) {
    for (int i = 0; i < 2; ++i) pool_.push_back(NewInput(RandomDims(2 + Uniform(2))));
    while (nodes_ < num_nodes && b_.status().ok()) Step();
    // Outputs: every value no node reads, and some that are read.
    for (const Tensor& t : pool_) {
      if (!b_.info(t).is_constant() && b_.info(t).producer >= 0 && (!read_[t.id] || Uniform(5) == 0)) {
        b_.Output(t);
      }
    }
    auto graph = b_.Build();
    if (!graph.ok()) return graph.status();
    return RandomGraph{*std::move(graph), std::move(inputs_)};
  }

 private:
  int Uniform(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  template <typename T>
  const T& Pick(const std::vector<T>& v) { return v[Uniform(static_cast<int>(v.size()))]; }

  std::vector<int64_t> RandomDims(int rank) {
    static const std::vector<int64_t> sizes = {1, 2, 3, 4, 5, 8};
    std::vector<int64_t> dims;
    for (int i = 0; i < rank; ++i) dims.push_back(Pick(sizes));
    return dims;
  }

  HostTensor RandomValues(const std::vector<int64_t>& dims) {
    HostTensor t = HostTensor::Zeros(DType::kF32, dims);
    std::normal_distribution<float> normal(0.f, 1.f);
    float* p = reinterpret_cast<float*>(t.data.data());
    for (size_t i = 0; i < t.data.size() / 4; ++i) p[i] = normal(rng_);
    return t;
  }

  Tensor NewInput(const std::vector<int64_t>& dims) {
    const std::string name = absl::StrCat("in", inputs_.size());
    inputs_[name] = RandomValues(dims);
    return b_.Input(name, DType::kF32, dims);
  }

  Tensor NewConstant(const std::vector<int64_t>& dims) {
    const HostTensor v = RandomValues(dims);
    return b_.Constant(absl::StrCat("w", constants_++), DType::kF32, dims,
                       ConstantData::Copy(v.data.data(), v.data.size()));
  }

  // A shape that broadcasts to `dims`: leading dims dropped, some set to 1.
  std::vector<int64_t> BroadcastVariant(const std::vector<int64_t>& dims) {
    std::vector<int64_t> v(dims.begin() + Uniform(static_cast<int>(dims.size())), dims.end());
    for (int64_t& d : v) {
      if (Uniform(3) == 0) d = 1;
    }
    return v;
  }

  const std::vector<int64_t>& Dims(Tensor t) { return b_.info(t).dims; }

  Tensor Use(Tensor t) {
    if (t.id >= static_cast<int>(read_.size())) read_.resize(t.id + 1);
    read_[t.id] = true;
    if (b_.info(t).is_view()) Use(Tensor{b_.info(t).view_of});
    return t;
  }

  Tensor AnyValue() { return Pick(pool_); }

  void Add(Tensor t) {
    if (t.valid()) pool_.push_back(t);
  }

  void AddNode(absl::string_view op, std::vector<Tensor> inputs) {
    for (Tensor& t : inputs) {
      if (t.valid()) Use(t);
    }
    Add(b_.Op1(op, std::move(inputs)));
    ++nodes_;
  }

  void Step() {
    switch (Uniform(9)) {
      case 0:
      case 1: {  // binary, broadcasting
        const Tensor a = AnyValue();
        std::vector<Tensor> partners;
        for (const Tensor& t : pool_) {
          if (BroadcastDims(Dims(a), Dims(t))) partners.push_back(t);
        }
        Tensor other;
        const int source = Uniform(4);
        if (source < 2 && !partners.empty()) {
          other = Pick(partners);
        } else if (source == 2) {
          other = NewConstant(BroadcastVariant(Dims(a)));
        } else {
          other = NewInput(BroadcastVariant(Dims(a)));
        }
        const bool swap = Uniform(2) == 0;
        AddNode(Pick(std::vector<std::string>{"add", "sub", "mul"}), swap ? std::vector{other, a} : std::vector{a, other});
        break;
      }
      case 2:
        AddNode(Pick(std::vector<std::string>{"neg", "silu", "tanh", "sigmoid"}), {AnyValue()});
        break;
      case 3: {  // matmul with a value or a weight
        const Tensor a = AnyValue();
        if (Dims(a).size() < 2) return;
        const int64_t k = Dims(a).back();
        std::vector<Tensor> partners;
        for (const Tensor& t : pool_) {
          const std::vector<int64_t>& d = Dims(t);
          if (d.size() >= 2 && d[d.size() - 2] == k &&
              BroadcastDims({Dims(a).begin(), Dims(a).end() - 2}, {d.begin(), d.end() - 2})) {
            partners.push_back(t);
          }
        }
        const Tensor b = !partners.empty() && Uniform(2) ? Pick(partners) : NewConstant({k, RandomDims(1)[0]});
        AddNode("matmul", {a, b});
        break;
      }
      case 4: {
        const Tensor x = AnyValue();
        const int64_t k = Dims(x).back(), n = RandomDims(1)[0];
        AddNode("linear", {x, NewConstant({n, k}), Uniform(2) ? NewConstant({n}) : Tensor{}});
        break;
      }
      case 5: {
        const Tensor x = AnyValue();
        const int64_t c = Dims(x).back();
        const bool rms = Uniform(2);
        AddNode(rms ? "rms_norm" : "layer_norm",
             {x, Uniform(2) ? NewConstant({c}) : Tensor{}, !rms && Uniform(2) ? NewConstant({c}) : Tensor{}});
        break;
      }
      case 6:
        AddNode("softmax", {AnyValue()});
        break;
      case 7:
      case 8:
        AddView();
        break;
    }
  }

  // A window of a value or a weight: the last dim trimmed at both ends, and
  // for rank >= 2 a range of the outermost dim; the base's strides.
  void AddView() {
    Tensor base = AnyValue();
    if (b_.info(base).is_view()) return;
    if (Uniform(4) == 0) base = NewConstant(RandomDims(1 + Uniform(3)));
    std::vector<int64_t> dims = b_.info(base).dims;
    const std::vector<int64_t> strides = b_.info(base).strides;
    int64_t offset = 0;
    const int64_t last = dims.back();
    if (last >= 2) {
      const int64_t skip = Uniform(static_cast<int>(last));
      dims.back() = 1 + Uniform(static_cast<int>(last - skip));
      offset += skip * 4;
    }
    if (dims.size() >= 2 && dims[0] >= 2) {
      const int64_t skip = Uniform(static_cast<int>(dims[0]));
      dims[0] -= skip;
      offset += skip * strides[0];
    }
    Add(b_.View(base, dims, strides, offset));
  }

  std::mt19937 rng_;
  GraphBuilder b_;
  std::vector<Tensor> pool_;  // values (and views) later nodes may read
  std::vector<bool> read_;    // per tensor id: read by a node
  std::map<std::string, HostTensor> inputs_;
  int constants_ = 0;
  int nodes_ = 0;
};

inline absl::StatusOr<RandomGraph> MakeRandomGraph(uint32_t seed, int num_nodes) {
  return RandomGraphMaker(seed).Make(num_nodes);
}

}  // namespace kiln::test
