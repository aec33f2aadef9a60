#include "tools/input_values.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/npy.h"

namespace kiln::tools {
namespace {

TensorInfo Info(DType dtype, std::vector<int64_t> dims) {
  TensorInfo t;
  t.name = std::string("input");  // (not = "..": a GCC 12 -Wrestrict false positive)
  t.dtype = dtype;
  t.dims = std::move(dims);
  t.strides = ContiguousStrides(dtype, t.dims);
  return t;
}

std::vector<double> Values(const HostTensor& h) {
  std::vector<double> v;
  const TensorView view = h.view();
  ForEachIndex(view.rank, view.dims, [&](const int64_t* idx) { v.push_back(LoadElement(view, idx)); });
  return v;
}

TEST(InputValuesTest, ReadsRangesFromMetadata) {
  Graph g;
  g.metadata["input_range.ids"] = "3, 5";
  g.metadata["input_range.bad"] = "5,3";
  g.metadata["input_range.junk"] = "one,two";
  auto r = InputRangeFor(g, "ids");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->lo, 3);
  EXPECT_EQ((*r)->hi, 5);
  r = InputRangeFor(g, "other");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  EXPECT_FALSE(InputRangeFor(g, "bad").ok());
  EXPECT_FALSE(InputRangeFor(g, "junk").ok());
}

TEST(InputValuesTest, IntegersStayInTheirRange) {
  const HostTensor h = RandomInput(Info(DType::kI32, {1000}), InputRange{3, 5}, 1);
  std::set<double> seen;
  for (double v : Values(h)) seen.insert(v);
  EXPECT_EQ(seen, (std::set<double>{3, 4, 5}));
  // Without a range: [0, 15].
  for (double v : Values(RandomInput(Info(DType::kI32, {1000}), std::nullopt, 1))) {
    EXPECT_TRUE(v >= 0 && v <= 15) << v;
  }
}

TEST(InputValuesTest, FloatsFollowTheRangeOrAHalfNormal) {
  for (double v : Values(RandomInput(Info(DType::kF16, {500}), InputRange{-1, 0}, 2))) {
    EXPECT_TRUE(v >= -1 && v <= 0) << v;
  }
  for (double v : Values(RandomInput(Info(DType::kF32, {8}), InputRange{0, 0}, 2))) EXPECT_EQ(v, 0);
  const std::vector<double> v = Values(RandomInput(Info(DType::kBF16, {20000}), std::nullopt, 3));
  double sum = 0, sq = 0;
  for (double x : v) sum += x, sq += x * x;
  const double mean = sum / v.size(), sd = std::sqrt(sq / v.size() - mean * mean);
  EXPECT_NEAR(mean, 0, 0.02);
  EXPECT_NEAR(sd, 0.5, 0.02);
}

TEST(InputValuesTest, SeedsAreDeterministic) {
  const TensorInfo t = Info(DType::kF32, {64});
  EXPECT_EQ(RandomInput(t, std::nullopt, 7).data, RandomInput(t, std::nullopt, 7).data);
  EXPECT_NE(RandomInput(t, std::nullopt, 7).data, RandomInput(t, std::nullopt, 8).data);
}

TEST(InputValuesTest, QuantizedInputsDecodeNearTheirRange) {
  const HostTensor h = RandomInput(Info(DType::kQ8_0, {2, 64}), InputRange{-2, 2}, 4);
  EXPECT_EQ(h.data.size(), 4u * kQ8BlockBytes);
  for (double v : Values(h)) EXPECT_TRUE(std::fabs(v) <= 2.01) << v;
}

using ::testing::HasSubstr;

// A graph of inputs only: what PlanInputs and MakeInputValue look at.
Graph InputsGraph(const std::vector<TensorInfo>& inputs) {
  Graph g;
  for (const TensorInfo& t : inputs) {
    g.inputs.push_back(static_cast<int>(g.tensors.size()));
    g.tensors.push_back(t);
  }
  return g;
}

TensorInfo Named(std::string name, DType dtype, std::vector<int64_t> dims) {
  TensorInfo t = Info(dtype, std::move(dims));
  t.name = std::move(name);
  return t;
}

// Writes a .npy file of raw element bytes with the given descr and shape.
std::string WriteRawNpy(const std::string& name, const std::string& descr, const std::string& shape,
                        const void* data, size_t bytes) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / (name + "." + std::to_string(::getpid()) + ".npy");
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + shape + "), }";
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t n = static_cast<uint16_t>(header.size());
  out.write(reinterpret_cast<const char*>(&n), 2);
  out << header;
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  return path.string();
}

absl::StatusOr<HostTensor> Make(const Graph& g, const std::vector<InputPlan>& plans, int i) {
  return MakeInputValue(g, plans[i], InputOptions{});
}

TEST(InputValuesTest, InputsNotGivenAreNamedAsRandom) {
  const Graph g = InputsGraph({Named("x", DType::kF32, {4}), Named("pos", DType::kI32, {1}),
                               Named("mask", DType::kF32, {8})});
  auto plans = PlanInputs(g, {{1, "zeros"}}, InputOptions{});
  ASSERT_TRUE(plans.ok()) << plans.status();
  const std::vector<std::string> notes = InputNotes(g, *plans);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_THAT(notes[0], HasSubstr("random values (no --input given) for 'x', 'mask'"));
  EXPECT_EQ((*plans)[0].source, "random");
  EXPECT_FALSE((*plans)[0].given);
  EXPECT_TRUE((*plans)[1].given);
  // Everything given (random explicitly included): no note.
  plans = PlanInputs(g, {{0, "random"}, {1, "zeros"}, {2, "random"}}, InputOptions{});
  ASSERT_TRUE(plans.ok());
  EXPECT_TRUE(InputNotes(g, *plans).empty());
}

TEST(InputValuesTest, ConversionsAreReported) {
  const std::vector<float> f32 = {1.f, -2.5f, 0.1f, 3.f};
  const std::vector<double> f64 = {1.0, -2.5, 0.1, 3.0};
  const std::string f32_file = WriteRawNpy("conv_f32", "<f4", "4,", f32.data(), 16);
  const std::string f64_file = WriteRawNpy("conv_f64", "<f8", "4,", f64.data(), 32);
  const std::vector<int64_t> i64 = {1, -2, 3, 4};
  const std::string i64_file = WriteRawNpy("conv_i64", "<i8", "4,", i64.data(), 32);
  const Graph g = InputsGraph({Named("a", DType::kBF16, {4}), Named("b", DType::kF16, {4}),
                               Named("c", DType::kF32, {4}), Named("d", DType::kF32, {4}),
                               Named("e", DType::kI32, {4})});
  auto plans = PlanInputs(g, {{0, f32_file}, {1, f32_file}, {2, f64_file}, {3, f32_file}, {4, i64_file}}, {});
  ASSERT_TRUE(plans.ok()) << plans.status();
  const std::vector<std::string> notes = InputNotes(g, *plans);
  ASSERT_EQ(notes.size(), 4u) << testing::PrintToString(notes);
  EXPECT_THAT(notes[0], HasSubstr("'a' float32 read as bf16"));
  EXPECT_THAT(notes[1], HasSubstr("'b' float32 read as f16"));
  EXPECT_THAT(notes[2], HasSubstr("'c' float64 read as f32"));
  EXPECT_THAT(notes[3], HasSubstr("'e' int64 read as i32"));
  for (int i = 0; i < 5; ++i) {
    auto v = Make(g, *plans, i);
    ASSERT_TRUE(v.ok()) << v.status();
    const std::vector<double> got = Values(*v);
    for (int j = 0; j < 4; ++j) {
      const double want = i == 4 ? static_cast<double>(i64[j]) : f32[j];
      EXPECT_NEAR(got[j], want, 0.01 * std::fabs(want)) << i << "," << j;
    }
  }
}

TEST(InputValuesTest, Q8InputsFromFloatsOrPackedBlocks) {
  std::vector<float> values(64);
  for (int i = 0; i < 64; ++i) values[i] = (i - 32) / 16.f;
  const std::string floats = WriteRawNpy("q8_floats", "<f4", "1, 64", values.data(), values.size() * 4);
  const Graph g = InputsGraph({Named("kv", DType::kQ8_0, {1, 64}), Named("packed", DType::kQ8_0, {1, 64})});
  // The packed blocks: what quantizing gave, as uint8 [1, 68].
  auto plans = PlanInputs(g, {{0, floats}, {1, "zeros"}}, {});
  ASSERT_TRUE(plans.ok()) << plans.status();
  const std::vector<std::string> notes = InputNotes(g, *plans);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_THAT(notes[0], HasSubstr("'kv' float32 quantized to q8_0"));
  auto q = Make(g, *plans, 0);
  ASSERT_TRUE(q.ok()) << q.status();
  ASSERT_EQ(q->data.size(), 2u * kQ8BlockBytes);
  const std::vector<double> decoded = Values(*q);
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(decoded[i], values[i], 0.02) << i;

  const std::string packed = WriteRawNpy("q8_packed", "|u1", "1, 68", q->data.data(), q->data.size());
  plans = PlanInputs(g, {{0, floats}, {1, packed}}, {});
  ASSERT_TRUE(plans.ok()) << plans.status();
  EXPECT_EQ(InputNotes(g, *plans).size(), 1u);  // as they are: no note for 'packed'
  auto p = Make(g, *plans, 1);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->data, q->data);

  // Packed bytes of the wrong row length: the expected shape is named.
  const std::string short_rows = WriteRawNpy("q8_short", "|u1", "1, 64", q->data.data(), 64);
  auto bad = PlanInputs(g, {{1, short_rows}}, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("expected [1,68]"));
}

TEST(InputValuesTest, UnconvertibleDTypesNameWhatIsAccepted) {
  const std::vector<float> f32 = {1, 2, 3, 4};
  const std::string file = WriteRawNpy("not_ints", "<f4", "4,", f32.data(), 16);
  const Graph g = InputsGraph({Named("ids", DType::kI32, {4}), Named("x", DType::kF32, {4})});
  auto plans = PlanInputs(g, {{0, file}}, {});
  ASSERT_FALSE(plans.ok());
  EXPECT_THAT(plans.status().message(), HasSubstr("holds float32 values; a i32 input takes int32, or int64"));
  const std::vector<int32_t> ints = {1, 2, 3, 4};
  const std::string int_file = WriteRawNpy("ints", "<i4", "4,", ints.data(), 16);
  plans = PlanInputs(g, {{1, int_file}}, {});
  ASSERT_FALSE(plans.ok());
  EXPECT_THAT(plans.status().message(), HasSubstr("a f32 input takes float32, float16 or float64"));
}

// A [2, 8] input given a sparse 4 GiB file of another shape: rejected from
// the header alone, at once, without reading (or allocating) 4 GiB.
TEST(InputValuesTest, WrongShapedFilesAreRejectedBeforeReading) {
  const std::string path = WriteRawNpy("huge", "<f4", "1024, 1024, 1024", nullptr, 0);
  std::filesystem::resize_file(path, (int64_t{4} << 30) + 128);
  const Graph g = InputsGraph({Named("x", DType::kF32, {2, 8})});
  const auto t0 = std::chrono::steady_clock::now();
  auto plans = PlanInputs(g, {{0, path}}, {});
  ASSERT_FALSE(plans.ok());
  EXPECT_THAT(plans.status().message(), HasSubstr("holds shape [1024,1024,1024], expected [2,8]"));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
  std::filesystem::remove(path);
}

TEST(InputValuesTest, GeneratedBytesAreCapped) {
  const Graph g = InputsGraph({Named("big", DType::kF32, {1 << 20}), Named("small", DType::kF32, {4})});
  InputOptions options;
  options.max_generated_bytes = 1 << 20;  // 1 MiB; 'big' is 4 MiB
  auto plans = PlanInputs(g, {}, options);
  ASSERT_FALSE(plans.ok());
  EXPECT_EQ(plans.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(plans.status().message(), HasSubstr("'big' 4.00 MiB"));
  EXPECT_THAT(plans.status().message(), HasSubstr("--max-generated-bytes"));
  options.max_generated_bytes = 8 << 20;
  EXPECT_TRUE(PlanInputs(g, {}, options).ok());
}

// Random values written in place equal RandomInput's.
TEST(InputValuesTest, MadeRandomValuesMatchRandomInput) {
  const Graph g = InputsGraph({Named("x", DType::kF16, {3, 32})});
  auto plans = PlanInputs(g, {}, {});
  ASSERT_TRUE(plans.ok());
  InputOptions options;
  options.seed = 5;
  auto a = MakeInputValue(g, (*plans)[0], options);
  auto b = MakeInputValue(g, (*plans)[0], options);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->data, b->data);
  EXPECT_EQ(a->data.size(), 3u * 32 * 2);
}

}  // namespace
}  // namespace kiln::tools
