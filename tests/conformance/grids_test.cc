// The grids: every op has cases, every case builds, the quick grid is a
// subset of the full one that still takes the parameter values the issue
// asks for (FA and GDN), and descriptions are unique.
#include "conformance/grids.h"

#include <map>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "conformance/runner.h"
#include "gtest/gtest.h"
#include "ops/flash_attn.h"
#include "ops/gated_delta_net.h"
#include "ops/registry.h"

namespace kiln::conformance {
namespace {

const std::vector<Case>& Quick() {
  static const auto* cases = new std::vector<Case>(MakeGrid(GridSize::kQuick));
  return *cases;
}

TEST(GridsTest, EveryOpHasQuickCases) {
  std::map<std::string, int> count;
  for (const Case& c : Quick()) ++count[c.op];
  for (const OpSchema* s : AllOps()) EXPECT_GT(count[s->name], 0) << s->name << " has no conformance cases";
}

// (That every quick case builds, quick_grid_cpu_test shows: the runner
// reports a case that does not as a failure.)
TEST(GridsTest, QuickCasesAreUnique) {
  std::set<std::string> seen;
  for (const Case& c : Quick()) EXPECT_TRUE(seen.insert(c.Describe()).second) << "duplicate: " << c.Describe();
}

TEST(GridsTest, FullCasesBuild) {
  for (const Case& c : MakeGrid(GridSize::kFull)) {
    auto graph = BuildCaseGraph(c);
    EXPECT_TRUE(graph.ok()) << c.Describe() << ": " << graph.status();
  }
}

TEST(GridsTest, QuickIsASubsetOfFull) {
  for (const std::string op : {"flash_attn", "gated_delta_net", "add", "write_rows"}) {
    std::set<std::string> full;
    for (const Case& c : MakeGrid(GridSize::kFull, op)) full.insert(c.Describe());
    const std::vector<Case> quick = MakeGrid(GridSize::kQuick, op);
    EXPECT_GT(full.size(), quick.size()) << op;
    for (const Case& c : quick) EXPECT_TRUE(full.count(c.Describe())) << c.Describe();
  }
}

TEST(GridsTest, SeedsFollowTheDescription) {
  const std::vector<Case> a = MakeGrid(GridSize::kQuick, "softmax");
  const std::vector<Case> b = MakeGrid(GridSize::kQuick, "softmax");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].seed, b[i].seed);
  EXPECT_NE(a[0].seed, a[1].seed);
}

const std::vector<Case>& QuickOf(absl::string_view op) {
  static auto* cache = new std::map<std::string, std::vector<Case>, std::less<>>();
  auto it = cache->find(op);
  if (it == cache->end()) it = cache->emplace(std::string(op), MakeGrid(GridSize::kQuick, op)).first;
  return it->second;
}

// The values the quick grid's cases of `op` take for one property.
template <typename F>
std::set<std::string> Values(absl::string_view op, F property) {
  std::set<std::string> v;
  for (const Case& c : QuickOf(op)) v.insert(property(c));
  return v;
}

void ExpectCovers(const std::set<std::string>& got, const std::vector<std::string>& want, absl::string_view what) {
  for (const std::string& w : want) EXPECT_TRUE(got.count(w)) << what << " never takes " << w;
}

TEST(GridsTest, QuickFlashAttnTouchesEveryRequiredValue) {
  auto dim = [](int input, int d) {
    return [=](const Case& c) { return absl::StrCat(c.inputs[input].dims[d]); };
  };
  ExpectCovers(Values("flash_attn", dim(kFlashAttnQ, 3)),
               {"32", "40", "64", "72", "80", "96", "112", "128", "192", "256"}, "Dk");
  ExpectCovers(Values("flash_attn", [](const Case& c) {
                 return absl::StrCat(c.inputs[kFlashAttnK].dims[3], "/", c.inputs[kFlashAttnV].dims[3]);
               }),
               {"192/128"}, "Dk/Dv");
  ExpectCovers(Values("flash_attn", [](const Case& c) {
                 return absl::StrCat(c.inputs[kFlashAttnQ].dims[2] / c.inputs[kFlashAttnK].dims[2]);
               }),
               {"1", "2", "4", "8"}, "GQA ratio");
  ExpectCovers(Values("flash_attn", dim(kFlashAttnQ, 1)), {"1", "3", "32", "75", "512"}, "Sq");
  ExpectCovers(Values("flash_attn", dim(kFlashAttnK, 1)), {"1", "113", "512", "1024", "4096"}, "Skv");
  ExpectCovers(Values("flash_attn",
                      [](const Case& c) { return std::string(DTypeName(c.inputs[kFlashAttnK].dtype)); }),
               {"f32", "f16", "bf16", "q8_0"}, "K/V dtype");
  const std::set<std::string> descriptions = Values("flash_attn", [](const Case& c) { return c.Describe(); });
  for (const char* feature :
       {"causal=true", "softcap=", "max_bias=", "sinks=f32", "mask=f16[1,1,", "mask=f32[1,", "mask=f16[2,8,",
        "/pad", "/perm0213", ":tiles", ":rows", ":window", ":multiseq", ":unwritten", ":nan_from", "out_dtype=\"f16\"",
        "out_dtype=\"bf16\"", "q=f16", "q=bf16", "scale="}) {
    bool found = false;
    for (const std::string& d : descriptions) found |= absl::StrContains(d, feature);
    EXPECT_TRUE(found) << "no quick flash_attn case has " << feature;
  }
  bool without_mask = false;
  for (const Case& c : QuickOf("flash_attn")) {
    without_mask |= c.inputs.size() <= kFlashAttnMask || !c.inputs[kFlashAttnMask].present;
  }
  EXPECT_TRUE(without_mask);
}

TEST(GridsTest, QuickGatedDeltaNetTouchesEveryRequiredValue) {
  ExpectCovers(Values("gated_delta_net", [](const Case& c) { return absl::StrCat(c.inputs[kGdnK].dims[3]); }),
               {"16", "32", "64", "128", "256"}, "K");
  ExpectCovers(Values("gated_delta_net",
                      [](const Case& c) { return absl::StrCat(c.inputs[kGdnV].dims[2] / c.inputs[kGdnK].dims[2]); }),
               {"1", "2", "4"}, "Hv/Hk");
  ExpectCovers(Values("gated_delta_net", [](const Case& c) { return absl::StrCat(c.inputs[kGdnQ].dims[1]); }),
               {"1", "2", "17", "64", "127", "256"}, "T");
  // T = 512 and the whole prefill models are in the full grid only (too slow
  // for CI on lavapipe); the quick grid has their stand-ins.
  bool full_512 = false, full_qwen3_next_prefill = false;
  for (const Case& c : MakeGrid(GridSize::kFull, "gated_delta_net")) {
    full_512 |= c.inputs[kGdnQ].dims[1] == 512;
    full_qwen3_next_prefill |= c.inputs[kGdnQ].dims[1] == 512 && c.inputs[kGdnV].dims[2] == 32;
  }
  EXPECT_TRUE(full_512);
  EXPECT_TRUE(full_qwen3_next_prefill);
  ExpectCovers(Values("gated_delta_net", [](const Case& c) { return absl::StrCat(c.inputs[kGdnQ].dims[0]); }),
               {"1", "3"}, "B");
  ExpectCovers(Values("gated_delta_net", [](const Case& c) { return absl::StrCat(c.inputs[kGdnG].dims.size()); }),
               {"3", "4"}, "GDA/KDA");
  ExpectCovers(Values("gated_delta_net",
                      [](const Case& c) { return std::string(DTypeName(c.inputs[kGdnQ].dtype)); }),
               {"f32", "f16", "bf16"}, "dtype");
  const std::set<std::string> descriptions =
      Values("gated_delta_net", [](const Case& c) { return c.Describe(); });
  // Each is on in some cases and off in others.
  for (const char* feature :
       {"head_map=\"tiled\"", "l2norm_qk=true", "state=f32", "inplace(5->1)", "/pad", "/perm", ":unit", "scale="}) {
    bool found = false, without = false;
    for (const std::string& d : descriptions) {
      found |= absl::StrContains(d, feature);
      without |= !absl::StrContains(d, feature);
    }
    EXPECT_TRUE(found) << "no quick gated_delta_net case has " << feature;
    EXPECT_TRUE(without) << "every quick gated_delta_net case has " << feature;
  }
}

}  // namespace
}  // namespace kiln::conformance
