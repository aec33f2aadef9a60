// A corpus of malformed graph files, generated from a valid one: each must be
// refused with a message that says what is wrong, and none may crash.
#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <random>
#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/stubs/logging.h"
#include "gtest/gtest.h"
#include "proto/graph_io.h"
#include "proto/kiln.pb.h"
#include "tests/proto/proto_test_util.h"

namespace kiln {
namespace {

using ::kiln::testing::ReadBytes;
using ::kiln::testing::TempDir;
using ::kiln::testing::WriteBytes;
using ::testing::HasSubstr;

namespace fs = std::filesystem;

class MalformedGraph : public ::testing::Test {
 protected:
  void SetUp() override {
    graph_ = testing::MakeRichGraph();
    path_ = dir_.File("g.kgraph");
    SaveOptions options;
    options.external_weights = true;
    options.external_min_bytes = 64;  // big_w and q8_w are external
    ASSERT_TRUE(SaveGraph(graph_, path_, options).ok());
    valid_bytes_ = ReadBytes(path_);
    ASSERT_TRUE(valid_.ParseFromString(valid_bytes_));
    ASSERT_TRUE(LoadGraph(path_).ok());
  }

  int T(absl::string_view name) const {
    const int id = graph_.FindTensor(name);
    EXPECT_GE(id, 0) << name;
    return id;
  }
  v1::Tensor& PT(v1::Graph& p, absl::string_view name) const { return *p.mutable_tensors(T(name)); }
  v1::Node& PN(v1::Graph& p, absl::string_view name) const {
    for (v1::Node& n : *p.mutable_nodes()) {
      if (n.name() == name) return n;
    }
    ADD_FAILURE() << "no node " << name;
    return *p.mutable_nodes(0);
  }

  // Writes `bytes` as the graph file, loads it and expects an error.
  absl::Status LoadBytes(const std::string& bytes, const std::string& name = "bad.kgraph") {
    const std::string path = dir_.File(name);
    WriteBytes(path, bytes);
    auto loaded = LoadGraph(path);
    return loaded.ok() ? absl::OkStatus() : loaded.status();
  }

  TempDir dir_;
  Graph graph_;
  std::string path_;
  std::string valid_bytes_;
  v1::Graph valid_;
};

struct Case {
  const char* what;
  const char* fragment;  // expected in the error message
  std::function<void(v1::Graph&)> mutate;
};

TEST_F(MalformedGraph, CorpusOfBrokenFields) {
  const uint64_t weights_size = fs::file_size(WeightsPathFor(path_));
  TempDir outside;
  WriteBytes(outside.File("w.bin"), ReadBytes(WeightsPathFor(path_)));
  fs::create_symlink(outside.File("w.bin"), dir_.File("escape.bin"));
  fs::create_directory_symlink(outside.path(), dir_.File("outdir"));
  fs::create_directory(dir_.File("sub"));
  fs::create_symlink("../../x", dir_.File("sub/up.bin"));
  const int64_t big = int64_t{1} << 41;
  auto ext = [&](v1::Graph& p) { return PT(p, "big_w").mutable_external(); };
  auto view = [&](v1::Graph& p) { return PT(p, "big_w.odd_rows").mutable_view(); };

  const std::vector<Case> cases = {
      // Format.
      {"newer format", "format_version 2 is newer than this kiln reads (1)",
       [](v1::Graph& p) { p.set_format_version(2); }},
      {"no format", "no format_version", [](v1::Graph& p) { p.clear_format_version(); }},
      // Tensor shapes and types.
      {"negative dim", "tensor 'x': has dim -3 in [-3,3,8]",
       [&](v1::Graph& p) { PT(p, "x").mutable_dims()->Set(0, -3); }},
      {"huge dim", "has dim 2199023255552",
       [&](v1::Graph& p) { PT(p, "x").mutable_dims()->Set(0, big); }},
      {"rank 5", "tensor 'x': has rank 5", [&](v1::Graph& p) {
         for (int i = 0; i < 2; ++i) PT(p, "x").add_dims(1);
       }},
      {"rank 0", "tensor 'x': has rank 0", [&](v1::Graph& p) { PT(p, "x").clear_dims(); }},
      {"overflowing shape", "is too large", [&](v1::Graph& p) {
         auto* d = PT(p, "x").mutable_dims();
         for (int i = 0; i < 3; ++i) d->Set(i, int64_t{1} << 40);
       }},
      {"q8_0 partial block", "multiple of 32",
       [&](v1::Graph& p) { PT(p, "q8_w").mutable_dims()->Set(1, 33); }},
      {"unknown dtype", "tensor 'x': has an unknown dtype value 99",
       [&](v1::Graph& p) { PT(p, "x").set_dtype(static_cast<v1::DType>(99)); }},
      {"negative dtype", "unknown dtype value -1",
       [&](v1::Graph& p) { PT(p, "x").set_dtype(static_cast<v1::DType>(-1)); }},
      {"no dtype", "tensor 'x': has no dtype",
       [&](v1::Graph& p) { PT(p, "x").set_dtype(v1::DTYPE_UNSPECIFIED); }},
      {"short inline data", "tensor 'norm_w': has 31 bytes of inline data, expected 32 (f32 [8])",
       [&](v1::Graph& p) { PT(p, "norm_w").mutable_inline_data()->resize(31); }},
      {"long inline data", "has 33 bytes of inline data",
       [&](v1::Graph& p) { PT(p, "norm_w").mutable_inline_data()->push_back('x'); }},
      {"missing constant data", "dangling",
       [&](v1::Graph& p) { PT(p, "norm_w").clear_inline_data(); }},
      // External data.
      {"overflowing offset", "beyond the end of",
       [&](v1::Graph& p) { ext(p)->set_offset(std::numeric_limits<uint64_t>::max() - 5); }},
      {"offset past the end", "beyond the end of \"g.kgraph.weights\"",
       [&](v1::Graph& p) { ext(p)->set_offset(weights_size); }},
      {"wrong length", "tensor 'big_w': has 1023 bytes of external data, expected 1024",
       [&](v1::Graph& p) { ext(p)->set_length(1023); }},
      {"huge length", "bytes of external data, expected",
       [&](v1::Graph& p) { ext(p)->set_length(std::numeric_limits<uint64_t>::max()); }},
      {"parent path", "may not leave the graph's folder",
       [&](v1::Graph& p) { ext(p)->set_path("../g.kgraph.weights"); }},
      {"hidden parent path", "may not leave the graph's folder",
       [&](v1::Graph& p) { ext(p)->set_path("sub/../../g.kgraph.weights"); }},
      {"absolute path", "is absolute",
       [&](v1::Graph& p) { ext(p)->set_path(WeightsPathFor(path_)); }},
      {"symlink out", "outside the graph's folder", [&](v1::Graph& p) { ext(p)->set_path("escape.bin"); }},
      {"folder symlink out", "outside the graph's folder",
       [&](v1::Graph& p) { ext(p)->set_path("outdir/w.bin"); }},
      {"dangling symlink up", "sub/up.bin", [&](v1::Graph& p) { ext(p)->set_path("sub/up.bin"); }},
      {"missing file", "No such file", [&](v1::Graph& p) { ext(p)->set_path("nope.bin"); }},
      {"folder as file", "is not a regular file", [&](v1::Graph& p) { ext(p)->set_path("sub"); }},
      {"empty path", "is empty", [&](v1::Graph& p) { ext(p)->set_path(""); }},
      {"NUL in path", "external path \"g.kgraph.weights\\x00x\" contains a NUL byte",
       [&](v1::Graph& p) { ext(p)->set_path(std::string("g.kgraph.weights\0x", 18)); }},
      // Views.
      {"huge view offset", "view offset", [&](v1::Graph& p) { view(p)->set_offset(int64_t{1} << 50); }},
      {"negative view offset", "view offset -2", [&](v1::Graph& p) { view(p)->set_offset(-2); }},
      {"view past its base", "view reads bytes [32, 1040) of base 'big_w', which has 1024",
       [&](v1::Graph& p) { view(p)->set_offset(32); }},
      {"negative stride", "stride -32 is out of range",
       [&](v1::Graph& p) { view(p)->mutable_strides()->Set(0, -32); }},
      {"huge stride", "is out of range",
       [&](v1::Graph& p) { view(p)->mutable_strides()->Set(0, int64_t{1} << 62); }},
      {"overflowing stride span", "view strides reach beyond", [&](v1::Graph& p) {
         PT(p, "big_w.odd_rows").mutable_dims()->Set(0, int64_t{1} << 30);
         view(p)->mutable_strides()->Set(0, int64_t{1} << 40);
       }},
      {"innermost stride", "innermost stride must be 2",
       [&](v1::Graph& p) { view(p)->mutable_strides()->Set(1, 4); }},
      {"stride count", "is a view with 1 strides for rank 2",
       [&](v1::Graph& p) { view(p)->mutable_strides()->RemoveLast(); }},
      {"view base out of range", "is a view of tensor #999, which does not exist",
       [&](v1::Graph& p) { view(p)->set_base(999); }},
      {"negative view base", "is a view of tensor #-5", [&](v1::Graph& p) { view(p)->set_base(-5); }},
      {"view of itself", "is a view of itself", [&](v1::Graph& p) { view(p)->set_base(T("big_w.odd_rows")); }},
      {"view of a view", "itself a view", [&](v1::Graph& p) {
         v1::Tensor& t = *p.add_tensors();
         t = PT(p, "big_w.odd_rows");
         t.set_name("view_of_view");
         t.mutable_view()->set_base(T("big_w.odd_rows"));
       }},
      {"view with data", "is a view and cannot carry data",
       [&](v1::Graph& p) { PT(p, "big_w.odd_rows").set_inline_data("abc"); }},
      // Nodes.
      {"cycle", "is on a cycle: 'residual' -> 'square' -> 'residual'",
       [&](v1::Graph& p) { PN(p, "residual").set_inputs(0, T("square")); }},
      {"self loop", "node 'square' (mul) is on a cycle: 'square' -> 'square'",
       [&](v1::Graph& p) { PN(p, "square").set_inputs(1, T("square")); }},
      {"dangling input", "input tensor 'ghost' is not defined before use (dangling", [&](v1::Graph& p) {
         v1::Tensor& t = *p.add_tensors();
         t = PT(p, "x");
         t.set_name("ghost");
         PN(p, "residual").set_inputs(1, p.tensors_size() - 1);
       }},
      {"input out of range", "node 'residual' (add): input #1 refers to tensor #999, which does not exist",
       [&](v1::Graph& p) { PN(p, "residual").set_inputs(1, 999); }},
      {"negative input", "input #1 refers to tensor #-2", [&](v1::Graph& p) { PN(p, "residual").set_inputs(1, -2); }},
      {"absent required input", "input 'b' refers to tensor #-1",
       [&](v1::Graph& p) { PN(p, "residual").set_inputs(1, -1); }},
      {"output out of range", "output #0 refers to tensor #999",
       [&](v1::Graph& p) { PN(p, "residual").set_outputs(0, 999); }},
      {"too many outputs", "has 2 outputs, expected 1", [&](v1::Graph& p) {
         v1::Tensor& t = *p.add_tensors();
         t = PT(p, "residual");
         t.set_name("extra");
         PN(p, "residual").add_outputs(p.tensors_size() - 1);
       }},
      {"too many inputs", "has 3 inputs, expected 2", [&](v1::Graph& p) { PN(p, "residual").add_inputs(0); }},
      {"unknown op", "node 'residual': unknown op 'frobnicate'",
       [&](v1::Graph& p) { PN(p, "residual").set_op("frobnicate"); }},
      {"attribute type", "node 'norm' (rms_norm): attribute 'eps' must be float",
       [&](v1::Graph& p) { (*PN(p, "norm").mutable_attrs())["eps"].set_s("small"); }},
      {"attribute range", "attribute 'a' = inf is out of range", [&](v1::Graph& p) {
         (*PN(p, "scaled").mutable_attrs())["a"].set_f(std::numeric_limits<double>::infinity());
       }},
      {"attribute NaN", "attribute 'a' = nan is out of range", [&](v1::Graph& p) {
         (*PN(p, "scaled").mutable_attrs())["a"].set_f(std::numeric_limits<double>::quiet_NaN());
       }},
      {"attribute choice", "attribute 'dtype' = \"f64\" is not one of",
       [&](v1::Graph& p) { (*PN(p, "to_f16").mutable_attrs())["dtype"].set_s("f64"); }},
      {"attribute without value", "node 'norm' (rms_norm): attribute 'eps' has no value",
       [&](v1::Graph& p) { (*PN(p, "norm").mutable_attrs())["eps"].Clear(); }},
      {"unknown attribute", "unknown attribute 'bogus'",
       [&](v1::Graph& p) { (*PN(p, "norm").mutable_attrs())["bogus"].set_b(true); }},
      {"output dtype", "output tensor 'residual' f16 [2,3,8] does not match the inferred f32 [2,3,8]",
       [&](v1::Graph& p) { PT(p, "residual").set_dtype(v1::F16); }},
      {"output shape", "does not match the inferred f32 [2,3,8]",
       [&](v1::Graph& p) { PT(p, "residual").mutable_dims()->Set(0, 5); }},
      {"input dtype", "node 'residual' (add)", [&](v1::Graph& p) { PN(p, "residual").set_inputs(1, T("rows")); }},
      {"duplicate tensor name", "tensor name 'x' is used twice",
       [&](v1::Graph& p) { PT(p, "norm_w").set_name("x"); }},
      {"duplicate node name", "node name 'norm' is used twice",
       [&](v1::Graph& p) { PN(p, "square").set_name("norm"); }},
      {"two writers", "tensor 'residual' is written by two nodes: 'residual' and 'square'",
       [&](v1::Graph& p) { PN(p, "square").set_outputs(0, T("residual")); }},
      {"node writes an input", "is already a constant, a view, a graph input",
       [&](v1::Graph& p) { PN(p, "odd_sq").set_outputs(0, T("x")); }},
      {"empty tensor name", "has no name", [&](v1::Graph& p) { PT(p, "residual").clear_name(); }},
      {"empty node name", "node has no name", [&](v1::Graph& p) { PN(p, "residual").clear_name(); }},
      // Graph inputs, outputs and states.
      {"graph output out of range", "graph output #999 does not exist",
       [](v1::Graph& p) { p.set_outputs(0, 999); }},
      {"graph input out of range", "graph input #-1 does not exist", [](v1::Graph& p) { p.add_inputs(-1); }},
      {"constant input", "a graph input cannot be a constant", [&](v1::Graph& p) { p.add_inputs(T("norm_w")); }},
      {"no outputs", "the graph has no outputs", [](v1::Graph& p) { p.clear_outputs(); p.clear_states(); }},
      {"state of a non-input", "state input #", [&](v1::Graph& p) { p.mutable_states(0)->set_input(T("norm_w")); }},
      {"state shape", "is declared the next value of state", [&](v1::Graph& p) {
         p.mutable_states(0)->set_input(T("x"));
       }},
      // Bytes and lengths a message must not pass on as they are.
      {"NUL in a node name", "is written by two nodes: 'resid\\x00ual' and 'square'", [&](v1::Graph& p) {
         PN(p, "square").set_outputs(0, T("residual"));
         PN(p, "residual").set_name(std::string("resid\0ual", 9));
       }},
      {"NUL in an attribute value", "= \"f1\\x00g\" is not one of", [&](v1::Graph& p) {
         (*PN(p, "to_f16").mutable_attrs())["dtype"].set_s(std::string("f1\0g", 4));
       }},
      {"4096-entry list", "[6,6,6,6,6,6,6,...,6 (4096 entries)]", [&](v1::Graph& p) {
         auto* ints = (*PN(p, "flat").mutable_attrs())["shape"].mutable_ints();
         ints->clear_values();
         for (int i = 0; i < 4096; ++i) ints->add_values(6);
       }},
      // Lengths.
      {"long name", "the name of tensor #0 has 5000 bytes, more than the limit of 1024",
       [&](v1::Graph& p) { PT(p, "x").set_name(std::string(5000, 'n')); }},
      {"long op", "the op of node #0 has 2000 bytes",
       [&](v1::Graph& p) { p.mutable_nodes(0)->set_op(std::string(2000, 'o')); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    v1::Graph proto = valid_;
    c.mutate(proto);
    const absl::Status st = LoadBytes(proto.SerializeAsString());
    EXPECT_FALSE(st.ok());
    EXPECT_THAT(std::string(st.message()), HasSubstr(c.fragment));
  }
}

TEST_F(MalformedGraph, EmptyFile) {
  const absl::Status st = LoadBytes("");
  EXPECT_THAT(std::string(st.message()), HasSubstr("no format_version"));
}

TEST_F(MalformedGraph, MissingWeightsFile) {
  fs::remove(WeightsPathFor(path_));
  auto loaded = LoadGraph(path_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("g.kgraph.weights"));
}

TEST_F(MalformedGraph, TruncatedWeightsFile) {
  fs::resize_file(WeightsPathFor(path_), 100);
  auto loaded = LoadGraph(path_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("beyond the end"));
}

TEST_F(MalformedGraph, MissingGraphFile) {
  auto loaded = LoadGraph(dir_.File("nothing.kgraph"));
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(MalformedGraph, FolderOrFifoAsGraphFile) {
  EXPECT_THAT(std::string(LoadGraph(dir_.path()).status().message()), HasSubstr("is not a regular file"));
  const std::string fifo = dir_.File("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Must not block waiting for a writer.
  EXPECT_THAT(std::string(LoadGraph(fifo).status().message()), HasSubstr("is not a regular file"));
}

TEST_F(MalformedGraph, OversizedFile) {
  LoadOptions options;
  options.max_file_bytes = 100;
  auto loaded = LoadGraph(path_, options);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("more than the limit of 100"));
}

// Truncating the file anywhere gives an error, or (once the cut falls after
// the outputs) a valid graph that lost states or metadata entries.
TEST_F(MalformedGraph, TruncatedFiles) {
  google::protobuf::LogSilencer quiet;  // invalid UTF-8 in cut strings is logged
  v1::Graph prefix = valid_;  // states and metadata are the last fields
  prefix.clear_states();
  prefix.clear_metadata();
  const size_t optional_tail_start = prefix.ByteSizeLong();
  for (size_t cut = 0; cut < valid_bytes_.size(); ++cut) {
    auto loaded = ParseGraph(absl::string_view(valid_bytes_).substr(0, cut), dir_.path());
    if (loaded.ok()) {
      EXPECT_GE(cut, optional_tail_start);
      EXPECT_LT(loaded->metadata.size() + loaded->states.size(),
                graph_.metadata.size() + graph_.states.size());
    }
  }
}

TEST_F(MalformedGraph, RandomBytes) {
  google::protobuf::LogSilencer quiet;
  std::mt19937_64 rng(1234);
  for (int i = 0; i < 500; ++i) {
    std::string bytes(rng() % 512, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    EXPECT_FALSE(ParseGraph(bytes, dir_.path()).ok());
  }
}

}  // namespace
}  // namespace kiln
