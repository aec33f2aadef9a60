// kiln bench: the case table (work counted from the masks) and a smoke run
// of the command on one small case per op.
#include <fstream>

#include "nlohmann/json.hpp"
#include "tests/tools/kiln_cli_fixture.h"
#include "tools/bench_cases.h"

namespace kiln::testing_cli {
namespace {

using ::testing::HasSubstr;

TEST(BenchCases, WorkFollowsTheMask) {
  // 8 sequences of 64 cells, one query each: each row sees 64 cells.
  auto c = tools::BuildCase("fa", {{"sq", "8"}, {"skv", "512"}, {"mask", "seq8"}, {"hq", "4"}, {"hkv", "2"}}, 1);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_DOUBLE_EQ(c->flops, 2.0 * 256 * 4 * 8 * 64);
  EXPECT_TRUE(c->memory_bound);
  EXPECT_EQ(c->inputs.size(), 4u);  // q, k, v, mask
  // A window of 16 over 100 cells, 1 query: 16 cells read.
  c = tools::BuildCase("fa", {{"sq", "1"}, {"skv", "100"}, {"mask", "swa16"}, {"hq", "2"}, {"hkv", "1"}}, 1);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_DOUBLE_EQ(c->flops, 2.0 * 256 * 2 * 16);
  // Causal prefill of 4 rows over 4 cells: 1 + 2 + 3 + 4 pairs.
  c = tools::BuildCase("fa", {{"sq", "4"}, {"skv", "4"}, {"mask", "causal"}, {"hq", "1"}, {"hkv", "1"}}, 1);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_DOUBLE_EQ(c->flops, 2.0 * 256 * 10);
  EXPECT_FALSE(tools::BuildCase("fa", {{"mask", "seq3"}, {"sq", "4"}}, 1).ok());
  EXPECT_FALSE(tools::CompleteParams("linear", {{"frob", "1"}}).ok());
  EXPECT_FALSE(tools::CompleteParams("conv", {}).ok());
}

class BenchCommandTest : public KilnCliFixture {};

TEST_F(BenchCommandTest, OneSmallCaseOfEachOp) {
  const std::string json = (dir_ / "bench.json").string();
  Result r = Kiln({"bench", "linear", "--case", "m=3,n=50,k=64,w=bf16", "--min-time", "1", "--json", json});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("f32 FMA peak"));
  EXPECT_THAT(r.out, HasSubstr("k=64,m=3,n=50,w=bf16"));
  const auto j = nlohmann::json::parse(Slurp(json));
  ASSERT_EQ(j["results"].size(), 1u);
  EXPECT_GT(j["results"][0]["gflops"].get<double>(), 0);
  // The node's own time (the CPU backend's timings) is there, within the run's.
  EXPECT_GT(j["results"][0]["ms_node"].get<double>(), 0);
  EXPECT_THAT(r.out, HasSubstr("node ms"));
  EXPECT_GT(j["limits"]["fma_f32_gflops"].get<double>(), 0);
  r = Kiln({"bench", "fa", "--case", "hq=4,hkv=2,dk=64,dv=64,sq=2,skv=256,mask=seq2", "--min-time", "1"});
  EXPECT_EQ(r.code, 0) << r.err;
  r = Kiln({"bench", "gdn", "--case", "b=2,t=3,hk=2,hv=4,k=32,v=32,gate=kda", "--min-time", "1"});
  EXPECT_EQ(r.code, 0) << r.err;
  // --copies sets how many input sets a memory-bound case rotates over.
  r = Kiln({"bench", "fa", "--case", "hq=4,hkv=2,dk=64,dv=64,sq=1,skv=256", "--min-time", "1", "--copies", "3",
            "--warmup", "20"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("(x3 rotated)"));
  ExpectOneErrorLine(Kiln({"bench", "fa", "--copies", "0"}), 2);
  ExpectOneErrorLine(Kiln({"bench", "fa", "--warmup", "-1"}), 2);
  ExpectOneErrorLine(Kiln({"bench", "fa", "linear", "--case", "m=1"}), 2);
  ExpectOneErrorLine(Kiln({"bench", "linear", "--case", "q=1"}), 2);
  ExpectOneErrorLine(Kiln({"bench", "conv"}), 2);
}

}  // namespace
}  // namespace kiln::testing_cli
