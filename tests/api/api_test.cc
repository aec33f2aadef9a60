// The public C++ API: backends, models from builders, files and bytes, inputs
// from host memory and .npy files, runs, outputs, states, plans, profiles,
// and the errors of each.
#include "kiln/kiln.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "examples/example_graphs.h"
#include "gmock/gmock.h"
#include "graph/builder.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "proto/graph_io.h"
#include "scheduler/npy.h"
#include "tests/api/api_test_util.h"

namespace kiln::api {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using test::AddConstant;
using test::Counter;
using test::Cpu;
using test::Floats;

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("kiln_api_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes a graph made with kiln's own builder (what files hold).
  std::string Save(const kiln::Graph& g, const std::string& file) {
    const std::string path = (dir_ / file).string();
    EXPECT_TRUE(kiln::SaveGraph(g, path).ok());
    return path;
  }
  // y = x * 2, f32 [n], with metadata.
  kiln::Graph Doubler(int64_t n, std::map<std::string, std::string> metadata = {}) {
    kiln::GraphBuilder b("doubler");
    kiln::Tensor x = b.Input("x", kiln::DType::kF32, {n});
    kiln::Tensor y = b.Op1("scale", {x}, {{"a", 2.0}});
    b.Rename(y, "y");
    b.Output(y);
    for (auto& [k, v] : metadata) b.SetMetadata(k, v);
    auto g = b.Build();
    EXPECT_TRUE(g.ok()) << g.status();
    return *std::move(g);
  }

  fs::path dir_;
};

TEST_F(ApiTest, BackendsAndDevices) {
  const std::vector<std::string> names = BackendNames();
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names.back(), "cpu");
  auto devices = ListDevices("cpu");
  ASSERT_TRUE(devices.ok()) << devices.status();
  ASSERT_FALSE(devices->empty());
  EXPECT_EQ((*devices)[0].backend, "cpu");

  EXPECT_EQ(ListDevices("nope").status().code(), absl::StatusCode::kNotFound);
  auto bad = Backend::Open("nope");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(bad.status().message(), HasSubstr("cpu"));  // lists what the build has

  BackendOptions flags;
  flags.flags["bogus"] = "1";
  EXPECT_FALSE(Backend::Open("cpu", flags).ok());

  Backend cpu = Cpu();
  EXPECT_EQ(cpu.name(), "cpu");
  EXPECT_EQ(cpu.device().backend, "cpu");
  EXPECT_STREQ(Version(), KILN_TEST_VERSION);
}

TEST_F(ApiTest, DTypesAndHostArrays) {
  EXPECT_EQ(DTypeName(DType::kBF16), "bf16");
  EXPECT_EQ(*ParseDType("q8_0"), DType::kQ8_0);
  EXPECT_FALSE(ParseDType("f64").ok());
  EXPECT_EQ(*ContiguousBytes(DType::kF16, {2, 3}), 12u);
  EXPECT_EQ(*ContiguousBytes(DType::kQ8_0, {2, 64}), 2u * 2 * 34);
  EXPECT_FALSE(ContiguousBytes(DType::kQ8_0, {2, 33}).ok());
  EXPECT_FALSE(ContiguousBytes(DType::kF32, {}).ok());
  EXPECT_FALSE(ContiguousBytes(DType::kF32, {1, 2, 3, 4, 5}).ok());
  EXPECT_FALSE(ContiguousBytes(DType::kF32, {-1}).ok());
  EXPECT_FALSE(ContiguousBytes(DType::kF32, {int64_t{1} << 62, 8}).ok());

  auto a = HostArray::Zeros(DType::kI32, {2, 2});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->numel(), 4);
  EXPECT_EQ(a->size_bytes(), 16u);
  const int32_t v[3] = {1, 2, 3};
  EXPECT_EQ(HostArray::Copy(DType::kI32, {2}, v, sizeof v).status().code(), absl::StatusCode::kInvalidArgument);
  // More host memory than there is: an error, not an exception.
  auto huge = HostArray::Zeros(DType::kF32, {int64_t{1} << 20, int64_t{1} << 20, 1 << 10});
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted) << huge.status();
}

TEST_F(ApiTest, BuiltModelRunsAndReadsOutputs) {
  auto model = Model::FromBuilder(AddConstant(8));
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_FALSE(model->prepared());
  EXPECT_EQ(model->entries(), std::vector<std::string>{"prefill"});
  Entry& e = **model->entry();
  ASSERT_EQ(e.inputs().size(), 1u);
  EXPECT_EQ(e.inputs()[0].name, "x");
  EXPECT_EQ(e.inputs()[0].bytes, 32u);
  ASSERT_EQ(e.outputs().size(), 1u);
  EXPECT_EQ(e.outputs()[0].name, "y");

  const std::vector<float> x = {1, 1, 1, 1, 2, 2, 2, 2};
  // Before Prepare.
  EXPECT_EQ(e.SetInput("x", DType::kF32, {8}, x.data(), 32).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(e.Run().code(), absl::StatusCode::kFailedPrecondition);

  ASSERT_TRUE(model->Prepare({Cpu()}).ok());
  EXPECT_TRUE(model->prepared());
  EXPECT_EQ(model->Prepare({Cpu()}).code(), absl::StatusCode::kFailedPrecondition);

  // Output before any run; a run before its input is set.
  EXPECT_EQ(e.GetOutput("y").status().code(), absl::StatusCode::kFailedPrecondition);
  absl::Status unset = e.Run();
  EXPECT_EQ(unset.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(unset.message(), HasSubstr("'x'"));

  ASSERT_TRUE(e.SetInput("x", DType::kF32, {8}, x.data(), 32).ok());
  ASSERT_TRUE(e.Run().ok());
  EXPECT_EQ(e.runs(), 1);
  auto y = e.GetOutput("y");
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->dims(), std::vector<int64_t>{8});
  EXPECT_EQ(Floats(*y), (std::vector<float>{1, 2, 3, 4, 6, 7, 8, 9}));

  std::vector<float> into(8);
  ASSERT_TRUE(e.ReadOutput("y", into.data(), 32).ok());
  EXPECT_EQ(into, Floats(*y));
  absl::Status small = e.ReadOutput("y", into.data(), 16);
  EXPECT_EQ(small.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(small.message(), HasSubstr("32 bytes"));
  absl::Status unknown = e.GetOutput("z").status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(unknown.message(), HasSubstr("'y'"));

  // A HostArray as input.
  auto xa = HostArray::Copy(DType::kF32, {8}, x.data(), 32);
  ASSERT_TRUE(xa.ok());
  ASSERT_TRUE(e.SetInput("x", *xa).ok());
  ASSERT_TRUE(e.Run().ok());
  EXPECT_EQ(e.runs(), 2);
}

TEST_F(ApiTest, InputsAreChecked) {
  auto model = Model::FromBuilder(AddConstant(8));
  ASSERT_TRUE(model.ok());
  ASSERT_TRUE(model->Prepare({Cpu()}).ok());
  Entry& e = **model->entry("prefill");
  std::vector<float> x(8);
  absl::Status st = e.SetInput("x", DType::kF16, {8}, x.data(), 16);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("input 'x' is f32 [8]; given f16 [8]"));
  st = e.SetInput("x", DType::kF32, {2, 4}, x.data(), 32);
  EXPECT_THAT(st.message(), HasSubstr("given f32 [2,4]"));
  st = e.SetInput("x", DType::kF32, {8}, x.data(), 31);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("32 bytes; given 31"));
  st = e.SetInput("x", DType::kF32, {8}, nullptr, 32);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  st = e.SetInput("w", DType::kF32, {8}, x.data(), 32);
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(st.message(), HasSubstr("entry 'prefill': no input or state named 'w'; its inputs: 'x'"));
  EXPECT_EQ(model->entry("decode").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ApiTest, BuilderErrorsStickAndNameTheNode) {
  GraphBuilder b("bad");
  Tensor x = b.Input("x", DType::kF32, {4});
  Tensor y = b.Op1("matmul", {x, x}, {}, "mm");  // rank-1 matmul
  EXPECT_FALSE(y.valid());
  EXPECT_FALSE(b.status().ok());
  EXPECT_THAT(b.status().message(), HasSubstr("mm"));
  EXPECT_FALSE(b.Op1("add", {x, x}).valid());  // nothing after the first error
  auto model = Model::FromBuilder(std::move(b));
  EXPECT_FALSE(model.ok());
  EXPECT_THAT(model.status().message(), HasSubstr("mm"));

  GraphBuilder c("bad_constant");
  const float v[3] = {};
  c.Constant("w", DType::kF32, {4}, v, sizeof v);
  EXPECT_THAT(c.status().message(), HasSubstr("constant 'w' f32 [4] needs 16 bytes, given 12"));
  EXPECT_EQ(c.Describe(Tensor{}).name, "");

  GraphBuilder unknown("unknown_op");
  Tensor u = unknown.Input("u", DType::kF32, {4});
  unknown.Op1("no_such_op", {u});
  EXPECT_THAT(unknown.status().message(), HasSubstr("no_such_op"));
}

TEST_F(ApiTest, BorrowedConstantsAreUsedInPlace) {
  auto weights = std::make_shared<std::vector<float>>(1024, 1.0f);
  GraphBuilder b("borrowed");
  Tensor x = b.Input("x", DType::kF32, {1024});
  Tensor w = b.ConstantView("w", DType::kF32, {1024}, weights, weights->data(), weights->size() * 4);
  Tensor y = b.Op1("add", {x, w});
  b.Rename(y, "y");
  b.Output(y);
  EXPECT_EQ(b.Describe(w).name, "w");
  EXPECT_EQ(b.Describe(w).bytes, 4096u);
  auto model = Model::FromBuilder(std::move(b));
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE(model->Prepare({Cpu()}).ok());
  auto stats = model->prepare_stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->weight_bytes_wrapped, 4096);
  EXPECT_EQ(stats->weight_bytes_uploaded, 0);
  ASSERT_EQ(stats->backends.size(), 1u);
  EXPECT_EQ(stats->backends[0].backend, "cpu");
  EXPECT_GE(stats->prepare_ms, 0);
}

TEST_F(ApiTest, StatesAreSharedByTheEntriesAndReadWritable) {
  auto model = Model::FromBuilder(Counter(4, 1, 1), "inc");
  ASSERT_TRUE(model.ok());
  ASSERT_TRUE(model->AddEntry("dbl", Counter(4, 2, 0, "doubler")).ok());
  EXPECT_EQ(model->AddEntry("dbl", Counter(4, 2, 0)).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_EQ(model->states().size(), 1u);
  EXPECT_EQ(model->states()[0].name, "s");
  EXPECT_EQ(model->ReadState("s").status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(model->Prepare({Cpu()}).ok());
  Entry& inc = **model->entry("inc");
  Entry& dbl = **model->entry("dbl");
  EXPECT_TRUE(inc.inputs().empty());
  ASSERT_EQ(inc.states().size(), 1u);

  auto s = model->ReadState("s");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(Floats(*s), (std::vector<float>{0, 0, 0, 0}));  // states start as zeros
  ASSERT_TRUE(inc.Run().ok());
  ASSERT_TRUE(inc.Run().ok());
  ASSERT_TRUE(dbl.Run().ok());  // the same buffer: (0 + 1 + 1) * 2
  EXPECT_EQ(Floats(*model->ReadState("s")), (std::vector<float>{4, 4, 4, 4}));
  EXPECT_EQ(Floats(*dbl.GetOutput("s")), (std::vector<float>{4, 4, 4, 4}));  // a state by name

  const std::vector<float> v = {1, 2, 3, 4};
  ASSERT_TRUE(model->WriteState("s", v.data(), 16).ok());
  ASSERT_TRUE(inc.Run().ok());
  std::vector<float> out(4);
  ASSERT_TRUE(model->ReadState("s", out.data(), 16).ok());
  EXPECT_EQ(out, (std::vector<float>{2, 3, 4, 5}));
  // A state set through an entry, like an input.
  ASSERT_TRUE(dbl.SetInput("s", DType::kF32, {4}, v.data(), 16).ok());
  EXPECT_EQ(Floats(*model->ReadState("s")), v);
  ASSERT_TRUE(model->ZeroStates().ok());
  EXPECT_EQ(Floats(*model->ReadState("s")), (std::vector<float>{0, 0, 0, 0}));
  ASSERT_TRUE(model->WriteState("s", v.data(), 16).ok());
  ASSERT_TRUE(model->ZeroState("s").ok());
  EXPECT_EQ(Floats(*model->ReadState("s")), (std::vector<float>{0, 0, 0, 0}));

  EXPECT_EQ(model->WriteState("s", v.data(), 12).code(), absl::StatusCode::kInvalidArgument);
  absl::Status unknown = model->ReadState("t").status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(unknown.message(), HasSubstr("its states: 's'"));

  // An entry added after Prepare is prepared at once, on the same state.
  ASSERT_TRUE(model->AddEntry("dec", Counter(4, 1, -1, "decrement")).ok());
  ASSERT_TRUE((*model->entry("dec"))->Run().ok());
  EXPECT_EQ(Floats(*model->ReadState("s")), (std::vector<float>{-1, -1, -1, -1}));
  // One that disagrees on the state's shape is refused, naming both graphs.
  absl::Status clash = model->AddEntry("wide", Counter(8, 1, 0, "wide"));
  EXPECT_FALSE(clash.ok());
  EXPECT_THAT(clash.message(), HasSubstr("wide"));
  EXPECT_EQ(model->entries().size(), 3u);
}

TEST_F(ApiTest, LoadsAModelFileWithItsEntries) {
  Save(Doubler(4), "decode.kgraph");
  const std::string prefill = Save(Doubler(4, {{"model.entry.decode", "decode.kgraph"}}), "m.kgraph");
  auto model = Model::Load(prefill);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->entries(), (std::vector<std::string>{"prefill", "decode"}));
  EXPECT_EQ((*model->entry())->name(), "prefill");
  EXPECT_EQ((*model->entry("prefill"))->metadata().at("model.entry.decode"), "decode.kgraph");
  ASSERT_TRUE(model->Prepare({Cpu()}).ok());
  Entry& d = **model->entry("decode");
  const float x[4] = {1, 2, 3, 4};
  ASSERT_TRUE(d.SetInput("x", DType::kF32, {4}, x, 16).ok());
  ASSERT_TRUE(d.Run().ok());
  EXPECT_EQ(Floats(*d.GetOutput("y")), (std::vector<float>{2, 4, 6, 8}));

  // An entry added explicitly, from a file and from bytes.
  Model m;
  ASSERT_TRUE(m.AddEntryFile("a", (dir_ / "decode.kgraph").string()).ok());
  std::ifstream in(dir_ / "decode.kgraph", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(m.AddEntryBytes("b", bytes).ok());
  EXPECT_EQ(m.entries(), (std::vector<std::string>{"a", "b"}));
  auto from_bytes = Model::FromBytes(bytes);
  ASSERT_TRUE(from_bytes.ok()) << from_bytes.status();
  EXPECT_EQ(from_bytes->entries(), std::vector<std::string>{"prefill"});
  absl::Status garbage = Model::FromBytes("not a graph").status();
  EXPECT_FALSE(garbage.ok());
  EXPECT_THAT(garbage.message(), HasSubstr("serialized graph"));
}

TEST_F(ApiTest, ModelEntriesMayNotLeaveTheFolder) {
  fs::create_directories(dir_ / "inner");
  Save(Doubler(4), "outside.kgraph");
  for (const std::string& bad : {std::string("../outside.kgraph"), (dir_ / "outside.kgraph").string(),
                                 std::string("missing.kgraph")}) {
    const std::string path = Save(Doubler(4, {{"model.entry.decode", bad}}), "inner/m.kgraph");
    auto model = Model::Load(path);
    ASSERT_FALSE(model.ok()) << bad;
    EXPECT_THAT(model.status().message(), HasSubstr("metadata 'model.entry.decode'")) << bad;
  }
  // A symlink out of the folder is refused too.
  fs::create_symlink(dir_ / "outside.kgraph", dir_ / "inner" / "link.kgraph");
  auto model = Model::Load(Save(Doubler(4, {{"model.entry.decode", "link.kgraph"}}), "inner/m.kgraph"));
  EXPECT_FALSE(model.ok());
  auto missing = Model::Load((dir_ / "nothing.kgraph").string());
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("nothing.kgraph"));
}

TEST_F(ApiTest, InputsFromNpyFiles) {
  auto model = Model::FromBuilder(AddConstant(4));
  ASSERT_TRUE(model.ok());
  ASSERT_TRUE(model->Prepare({Cpu()}).ok());
  Entry& e = **model->entry();
  kiln::HostTensor f16 = kiln::HostTensor::Zeros(kiln::DType::kF16, {4});
  for (int i = 0; i < 4; ++i) {
    const uint16_t h = kiln::F32ToF16(10.0f * i);
    std::memcpy(f16.data.data() + 2 * i, &h, 2);
  }
  const std::string file = (dir_ / "x.npy").string();
  ASSERT_TRUE(kiln::WriteNpy(file, f16).ok());
  ASSERT_TRUE(e.SetInputFromNpy("x", file).ok());  // f16 values read as f32
  ASSERT_TRUE(e.Run().ok());
  EXPECT_EQ(Floats(*e.GetOutput("y")), (std::vector<float>{0, 11, 22, 33}));

  const std::string wrong = (dir_ / "wrong.npy").string();
  ASSERT_TRUE(kiln::WriteNpy(wrong, kiln::HostTensor::Zeros(kiln::DType::kF32, {5})).ok());
  absl::Status st = e.SetInputFromNpy("x", wrong);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("wrong.npy"));
  EXPECT_THAT(st.message(), HasSubstr("expected [4]"));
  EXPECT_FALSE(e.SetInputFromNpy("x", (dir_ / "none.npy").string()).ok());
  EXPECT_EQ(e.SetInputFromNpy("q", file).code(), absl::StatusCode::kNotFound);
}

TEST_F(ApiTest, SubmitAndWait) {
  auto model = Model::FromBuilder(Counter(4, 1, 1), "a");
  ASSERT_TRUE(model.ok());
  ASSERT_TRUE(model->AddEntry("b", Counter(4, 1, 1)).ok());
  ASSERT_TRUE(model->Prepare({Cpu()}).ok());
  Entry& a = **model->entry("a");
  Entry& b = **model->entry("b");
  EXPECT_EQ(a.Wait().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(a.Submit().ok());
  EXPECT_EQ(a.Submit().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(a.GetOutput("s.next").status().code(), absl::StatusCode::kFailedPrecondition);
  // Another entry of the model, or its states, on the thread that holds the
  // submitted run: an error, not a deadlock.
  absl::Status other = b.Run();
  EXPECT_EQ(other.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(other.message(), HasSubstr("'a'"));
  EXPECT_EQ(model->ReadState("s").status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(a.Wait().ok());
  EXPECT_EQ(a.Wait().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(b.Run().ok());
  EXPECT_EQ(Floats(*model->ReadState("s")), (std::vector<float>{2, 2, 2, 2}));
  EXPECT_EQ(a.runs(), 1);
}

TEST_F(ApiTest, PlanProfileAndTrace) {
  auto model = Model::FromBuilder(AddConstant(64));
  ASSERT_TRUE(model.ok());
  Entry& e = **model->entry();
  EXPECT_EQ(e.plan().status().code(), absl::StatusCode::kFailedPrecondition);
  PrepareOptions options;
  options.strict = true;
  options.profile = true;
  ASSERT_TRUE(model->Prepare({Cpu()}, options).ok());
  auto plan = e.plan();
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->entry, "prefill");
  EXPECT_EQ(plan->backends, std::vector<std::string>{"cpu"});
  ASSERT_EQ(plan->nodes.size(), 1u);
  EXPECT_EQ(plan->nodes[0].op, "add");
  EXPECT_EQ(plan->nodes[0].backend, "cpu");
  EXPECT_EQ(plan->nodes[0].split, 0);
  ASSERT_EQ(plan->splits.size(), 1u);
  EXPECT_TRUE(plan->transfers.empty());
  ASSERT_EQ(plan->memory.size(), 1u);
  EXPECT_EQ(plan->memory[0].input_bytes, 256);
  EXPECT_EQ(plan->memory[0].constant_bytes, 256);
  EXPECT_THAT(plan->ToText(), HasSubstr("add"));
  auto json = nlohmann::json::parse(plan->ToJson());
  EXPECT_EQ(json["nodes"][0]["backend"], "cpu");
  EXPECT_EQ(json["memory"][0]["input_bytes"], 256);

  std::vector<float> x(64, 1);
  ASSERT_TRUE(e.SetInput("x", DType::kF32, {64}, x.data(), 256).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(e.Run().ok());
  auto profile = e.profile();
  ASSERT_TRUE(profile.ok());
  EXPECT_EQ(profile->runs, 3);
  ASSERT_EQ(profile->nodes.size(), 1u);
  EXPECT_EQ(profile->nodes[0].count, 3);
  ASSERT_EQ(profile->ops.size(), 1u);
  EXPECT_EQ(profile->ops[0].op, "add");
  EXPECT_EQ(nlohmann::json::parse(profile->ToJson())["nodes"][0]["count"], 3);
  EXPECT_THAT(profile->ToText(), HasSubstr("add"));
  ASSERT_TRUE(e.SetProfiling(false).ok());
  ASSERT_TRUE(e.Run().ok());
  EXPECT_EQ(e.profile()->nodes[0].count, 3);
  e.ResetProfile();
  EXPECT_EQ(e.profile()->nodes[0].count, 0);

  ASSERT_TRUE(e.SetTracing(true).ok());
  ASSERT_TRUE(e.Run().ok());
  auto trace = e.TraceJson();
  ASSERT_TRUE(trace.ok());
  EXPECT_NO_THROW(nlohmann::json::parse(*trace));

  // Without allow_profiling, profiling is refused.
  auto quiet = Model::FromBuilder(AddConstant(4));
  PrepareOptions no_timing;
  no_timing.allow_profiling = false;
  ASSERT_TRUE(quiet->Prepare({Cpu()}, no_timing).ok());
  EXPECT_EQ((*quiet->entry())->SetProfiling(true).code(), absl::StatusCode::kFailedPrecondition);
  no_timing.profile = true;
  auto bad = Model::FromBuilder(AddConstant(4));
  EXPECT_EQ(bad->Prepare({Cpu()}, no_timing).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ApiTest, PrepareErrors) {
  auto model = Model::FromBuilder(AddConstant(4));
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(model->Prepare({}).code(), absl::StatusCode::kInvalidArgument);
  Backend cpu = Cpu();
  EXPECT_EQ(model->Prepare({cpu, cpu}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(model->prepared());
  EXPECT_EQ(Model().Prepare({cpu}).code(), absl::StatusCode::kFailedPrecondition);  // no entries
  ASSERT_TRUE(model->Prepare({cpu}).ok());  // a failed Prepare leaves the model preparable
}

// The hybrid example as a model file of two entries: prefill, then decode on
// the states prefill left, over one copy of the weights.
TEST_F(ApiTest, HybridPrefillThenDecode) {
  kiln::ExampleOptions eo;
  eo.seed = 3;
  eo.prefill_tokens = 4;
  auto prefill = kiln::MakeExample("hybrid-block-prefill", eo);
  auto decode = kiln::MakeExample("hybrid-block-decode", eo);
  ASSERT_TRUE(prefill.ok() && decode.ok());
  prefill->metadata["model.entry.decode"] = "decode.kgraph";
  kiln::SaveOptions so;
  so.external_weights = true;
  ASSERT_TRUE(kiln::SaveGraph(*decode, (dir_ / "decode.kgraph").string(), so).ok());
  ASSERT_TRUE(kiln::SaveGraph(*prefill, (dir_ / "prefill.kgraph").string(), so).ok());

  auto model = Model::Load((dir_ / "prefill.kgraph").string());
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE(model->Prepare({Cpu()}).ok());
  Entry& p = **model->entry("prefill");
  Entry& d = **model->entry("decode");
  std::vector<float> x(4 * 1024, 0.25f);
  ASSERT_TRUE(p.SetInput("x", DType::kF32, {1, 4, 1024}, x.data(), x.size() * 4).ok());
  ASSERT_TRUE(p.Run().ok());
  auto cache = model->ReadState("blk.1.k_cache");
  ASSERT_TRUE(cache.ok()) << cache.status();
  bool written = false;
  for (size_t i = 0; i < cache->size_bytes(); ++i) written = written || cache->data()[i] != std::byte{0};
  EXPECT_TRUE(written);

  const int32_t pos = 4;
  std::vector<float> mask(4096, -INFINITY);
  for (int i = 0; i <= pos; ++i) mask[i] = 0;
  ASSERT_TRUE(d.SetInput("x", DType::kF32, {1, 1, 1024}, x.data(), 1024 * 4).ok());
  ASSERT_TRUE(d.SetInput("pos", DType::kI32, {1}, &pos, 4).ok());
  ASSERT_TRUE(d.SetInput("mask", DType::kF32, {1, 1, 1, 4096}, mask.data(), mask.size() * 4).ok());
  ASSERT_TRUE(d.Run().ok());
  auto y = d.GetOutput("y");
  ASSERT_TRUE(y.ok());
  for (float v : Floats(*y)) ASSERT_TRUE(std::isfinite(v));

  // The weights are held once, shared by the two entries.
  auto stats = model->prepare_stats();
  ASSERT_TRUE(stats.ok());
  int64_t decode_weights = 0;
  for (const auto& t : decode->tensors) {
    if (t.is_constant() && !t.is_view()) decode_weights += static_cast<int64_t>(t.constant->size);
  }
  EXPECT_GT(stats->weight_bytes_held, 0);
  EXPECT_LT(stats->weight_bytes_held, 2 * decode_weights);
}

}  // namespace
}  // namespace kiln::api

namespace kiln::api {
namespace {

TEST(ApiZeroCopyTest, InputAndOutputBuffersOnTheCpu) {
  auto model = Model::FromBuilder(test::AddConstant(8));
  ASSERT_TRUE(model.ok());
  Entry& e = **model->entry();
  EXPECT_EQ(e.InputBuffer("x").status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(model->Prepare({test::Cpu()}).ok());
  auto in = e.InputBuffer("x");
  ASSERT_TRUE(in.ok()) << in.status();
  ASSERT_EQ(in->size(), 32u);
  float* x = reinterpret_cast<float*>(in->data());
  for (int i = 0; i < 8; ++i) x[i] = 100;
  EXPECT_EQ(e.OutputBuffer("y").status().code(), absl::StatusCode::kFailedPrecondition);  // no run yet
  ASSERT_TRUE(e.Run().ok());  // no SetInput: the buffer counts as set
  auto out = e.OutputBuffer("y");
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 32u);
  const float* y = reinterpret_cast<const float*>(out->data());
  EXPECT_EQ(y[0], 100);
  EXPECT_EQ(y[7], 107);
  x[7] = 0;  // rewritten in place for the next run
  ASSERT_TRUE(e.Run().ok());
  EXPECT_EQ(reinterpret_cast<const float*>(e.OutputBuffer("y")->data())[7], 7);
  EXPECT_EQ(e.OutputBuffer("x").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(e.InputBuffer("nope").status().code(), absl::StatusCode::kNotFound);

  auto counter = Model::FromBuilder(test::Counter(4, 1, 1));
  ASSERT_TRUE(counter.ok() && counter->Prepare({test::Cpu()}).ok());
  EXPECT_EQ((*counter->entry())->InputBuffer("s").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kiln::api

namespace kiln::api {
namespace {

TEST(ApiLifetimeTest, ModelFreedWithARunInFlight) {
  auto model = Model::FromBuilder(test::Counter(1 << 16, 1, 1));
  ASSERT_TRUE(model.ok() && model->Prepare({test::Cpu()}).ok());
  ASSERT_TRUE((*model->entry())->Submit().ok());
  Model moved = *std::move(model);  // entries survive moves
  EXPECT_EQ((*moved.entry())->name(), "prefill");
  // Destroyed without Wait: the destructor waits for the run.
}

}  // namespace
}  // namespace kiln::api
