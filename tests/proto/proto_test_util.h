// Shared helpers of the proto tests: temp folders, file bytes, a graph that
// uses every feature of the format, and a field-by-field graph comparison.
#pragma once

#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "graph/builder.h"
#include "gtest/gtest.h"

namespace kiln::testing {

// A fresh folder removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "kiln_proto_XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// Deterministic constant bytes of a given size.
inline std::shared_ptr<const ConstantData> PatternBytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 8));
  return ConstantData::Copy(v.data(), v.size());
}

// f32 values 0.5, 1.0, ... (valid floats: the loader does not care, but the
// graph stays meaningful for anyone running it).
inline std::shared_ptr<const ConstantData> F32Bytes(size_t count) {
  std::vector<float> v(count);
  for (size_t i = 0; i < count; ++i) v[i] = 0.5f * static_cast<float>(i + 1);
  return ConstantData::Copy(v.data(), v.size() * sizeof(float));
}

// Uses inline and large constants (f32, f16, i32, q8_0), a strided view with
// an offset, absent optional inputs, attributes of every type (float, int
// list, string, bool), a two-output node, a state and metadata. Built only
// with ops the format tests need: add, mul, scale, rms_norm, reshape, cast,
// write_rows, gated_delta_net.
inline Graph MakeRichGraph() {
  GraphBuilder b("rich");
  Tensor x = b.Input("x", DType::kF32, {2, 3, 8});
  Tensor norm_w = b.Constant("norm_w", DType::kF32, {8}, F32Bytes(8));
  Tensor big = b.Constant("big_w", DType::kF16, {64, 8}, PatternBytes(64 * 8 * 2, 3));
  Tensor q8 = b.Constant("q8_w", DType::kQ8_0, {2, 32}, PatternBytes(2 * 34, 9));
  Tensor rows = b.Constant("rows", DType::kI32, {2}, ConstantData::Copy(std::vector<int32_t>{1, 3}.data(), 8));
  Tensor h = b.Op1("rms_norm", {x, norm_w, Tensor{}}, {{"eps", 1e-5}}, "norm");
  Tensor s = b.Op1("scale", {h}, {{"a", 0.5}, {"b", 0.25}}, "scaled");
  Tensor y = b.Op1("add", {s, x}, {}, "residual");
  Tensor z = b.Op1("mul", {y, y}, {}, "square");
  Tensor r = b.Op1("reshape", {z}, {{"shape", std::vector<int64_t>{6, 8}}}, "flat");
  Tensor c = b.Op1("cast", {r}, {{"dtype", std::string("f16")}}, "to_f16");
  // Every other row of big_w, starting at row 1.
  Tensor odd = b.View(big, {32, 8}, {32, 2}, 16, "big_w.odd_rows");
  Tensor sq = b.Op1("mul", {odd, odd}, {}, "odd_sq");
  Tensor cache = b.Input("cache", DType::kF32, {4, 8});
  Tensor src = b.Input("src", DType::kF32, {2, 8});
  Tensor new_cache = b.Op1("write_rows", {cache, src, rows}, {}, "append");
  Tensor q = b.Input("q", DType::kF32, {1, 2, 1, 4});
  Tensor k = b.Input("k", DType::kF32, {1, 2, 1, 4});
  Tensor v = b.Input("v", DType::kF32, {1, 2, 1, 4});
  Tensor g = b.Input("g", DType::kF32, {1, 2, 1});
  Tensor beta = b.Input("beta", DType::kF32, {1, 2, 1});
  std::vector<Tensor> gdn = b.Op("gated_delta_net", {q, k, v, g, beta},
                                 {{"l2norm_qk", true}, {"head_map", std::string("grouped")}}, "gdn");
  b.Output(c);
  b.Output(sq);
  b.Output(new_cache);
  b.State(cache, new_cache);
  for (Tensor t : gdn) b.Output(t);
  b.Output(q8);
  b.SetMetadata("input_range.x", "-1,1");
  b.SetMetadata("author", "kiln tests");
  auto graph = b.Build();
  EXPECT_TRUE(graph.ok()) << graph.status();
  return graph.ok() ? *std::move(graph) : Graph{};
}

inline void ExpectSameConstant(const TensorInfo& a, const TensorInfo& b) {
  ASSERT_EQ(a.is_constant(), b.is_constant()) << a.name;
  if (!a.is_constant()) return;
  ASSERT_EQ(a.constant->size, b.constant->size) << a.name;
  EXPECT_EQ(0, a.constant->size == 0 ? 0 : std::memcmp(a.constant->data, b.constant->data, a.constant->size))
      << "constant bytes of " << a.name;
}

// Every field, in order (nodes too: use after a sort only when the order is
// known to be kept).
inline void ExpectSameGraph(const Graph& a, const Graph& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.metadata, b.metadata);
  EXPECT_EQ(a.inputs, b.inputs);
  EXPECT_EQ(a.outputs, b.outputs);
  ASSERT_EQ(a.states.size(), b.states.size());
  for (size_t i = 0; i < a.states.size(); ++i) {
    EXPECT_EQ(a.states[i].input, b.states[i].input);
    EXPECT_EQ(a.states[i].output, b.states[i].output);
  }
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const TensorInfo& x = a.tensors[i];
    const TensorInfo& y = b.tensors[i];
    SCOPED_TRACE(x.name);
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.dtype, y.dtype);
    EXPECT_EQ(x.dims, y.dims);
    EXPECT_EQ(x.strides, y.strides);
    EXPECT_EQ(x.view_of, y.view_of);
    EXPECT_EQ(x.offset, y.offset);
    EXPECT_EQ(x.producer, y.producer);
    ExpectSameConstant(x, y);
  }
  ASSERT_EQ(a.nodes.size(), b.nodes.size());
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    const Node& x = a.nodes[i];
    const Node& y = b.nodes[i];
    SCOPED_TRACE(x.name);
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.op, y.op);
    EXPECT_EQ(x.inputs, y.inputs);
    EXPECT_EQ(x.outputs, y.outputs);
    EXPECT_EQ(x.attrs, y.attrs);
  }
}

}  // namespace kiln::testing
