// The CPU gated_delta_net kernels against the reference: GDA and KDA, head
// sizes (specialized and generic), both head maps, token counts, with and
// without a state, batches, l2norm, f16/bf16 inputs, strided views, threads
// (column groups) and final_state aliasing state.
#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backends/cpu/cpu_backend.h"
#include "gtest/gtest.h"
#include "ops/gated_delta_net.h"
#include "tests/backends/cpu_kernel_test_util.h"

namespace kiln {
namespace {

using testing_util::Absent;
using testing_util::In;
using testing_util::KernelMatchesReference;
using testing_util::OpCase;
using testing_util::TestInput;
using testing_util::ViewIn;

struct GdnSpec {
  int64_t B = 1, T = 1, Hk = 1, Hv = 2, K = 64, V = 64;
  DType qk = DType::kF32, v = DType::kF32;
  bool kda = false, state = true, l2norm = false;
  std::string head_map = "grouped";
  double scale = 0;
  bool view = false;   // q, k, v, g, beta, state as strided windows
  bool alias = false;  // final_state in state's memory
  int threads = 2;
  double g_lo = -0.5, g_hi = 0;  // log gates
};

std::string Name(const GdnSpec& s) {
  return absl::StrCat("B", s.B, " T", s.T, " Hk", s.Hk, " Hv", s.Hv, " K", s.K, " V", s.V,
                      " qk=", DTypeName(s.qk), " v=", DTypeName(s.v), " kda=", s.kda,
                      " state=", s.state, " l2norm=", s.l2norm, " map=", s.head_map,
                      " view=", s.view, " alias=", s.alias, " threads=", s.threads, " g=[", s.g_lo,
                      ",", s.g_hi, "]");
}

OpCase MakeCase(const GdnSpec& s) {
  auto in = [&](DType t, std::vector<int64_t> dims, double lo, double hi) {
    return s.view ? ViewIn(t, std::move(dims), lo, hi) : In(t, std::move(dims), lo, hi);
  };
  // Without l2norm, keep |k|^2 near 1 so that the recurrence stays stable.
  const double ka = s.l2norm ? 1.0 : std::sqrt(3.0 / s.K);
  OpCase c;
  c.op = "gated_delta_net";
  c.inputs.push_back(in(s.qk, {s.B, s.T, s.Hk, s.K}, -1, 1));
  c.inputs.push_back(in(s.qk, {s.B, s.T, s.Hk, s.K}, -ka, ka));
  c.inputs.push_back(in(s.v, {s.B, s.T, s.Hv, s.V}, -1, 1));
  if (s.kda) {
    c.inputs.push_back(in(DType::kF32, {s.B, s.T, s.Hv, s.K}, s.g_lo, s.g_hi));
  } else {
    c.inputs.push_back(in(DType::kF32, {s.B, s.T, s.Hv}, s.g_lo, s.g_hi));
  }
  c.inputs.push_back(in(DType::kF32, {s.B, s.T, s.Hv}, 0.05, 0.95));
  if (s.state) {
    TestInput st = In(DType::kF32, {s.B, s.Hv, s.K, s.V}, -1, 1);
    st.view = s.view && !s.alias;
    c.inputs.push_back(st);
  }
  c.attrs["scale"] = s.scale;
  c.attrs["l2norm_qk"] = s.l2norm;
  c.attrs["head_map"] = s.head_map;
  if (s.alias) c.alias = {{kGdnState, kGdnFinalState}};
  return c;
}

void ExpectMatches(const GdnSpec& s, std::string* key = nullptr) {
  const OpCase c = MakeCase(s);
  auto inst = testing_util::MakeInstance(c, 11);
  ASSERT_TRUE(inst.ok()) << Name(s) << ": " << inst.status();
  EXPECT_TRUE(KernelMatchesReference(*inst, s.threads, c.alias, key)) << Name(s);
}

TEST(CpuGatedDeltaNetTest, GdaAndKdaByHeadSizeAndTokens) {
  for (bool kda : {false, true}) {
    for (int64_t n : {32, 64, 128}) {
      for (int64_t T : {1, 2, 17, 64, 127}) {
        GdnSpec s;
        s.kda = kda, s.K = s.V = n, s.T = T, s.l2norm = T % 2 == 1;
        std::string key;
        ExpectMatches(s, &key);
        EXPECT_EQ(key, absl::StrCat("gated_delta_net[k=", n, ",v=", n, ",kda=", kda, "]"));
      }
    }
  }
}

// Strong decays (products over a 64-token chunk far below f32's range),
// where a form that carries the decays' cumulative product (the chunked
// one, or any rescaled recurrence) must keep its exponents bounded.
TEST(CpuGatedDeltaNetTest, StrongDecays) {
  for (bool kda : {false, true}) {
    for (auto [lo, hi] : {std::pair{-6.0, -1.0}, std::pair{-60.0, -20.0}}) {
      GdnSpec s;
      s.kda = kda, s.T = 100, s.l2norm = true, s.g_lo = lo, s.g_hi = hi;
      ExpectMatches(s);
    }
  }
}

TEST(CpuGatedDeltaNetTest, HeadMapsBatchesStatesNorms) {
  for (const char* map : {"grouped", "tiled"}) {
    for (int64_t B : {1, 3}) {
      for (bool state : {false, true}) {
        for (bool l2norm : {false, true}) {
          GdnSpec s;
          s.B = B, s.T = 9, s.Hk = 2, s.Hv = 6, s.K = s.V = 64, s.head_map = map;
          s.state = state, s.l2norm = l2norm, s.kda = B == 3;
          ExpectMatches(s);
        }
      }
    }
  }
}

TEST(CpuGatedDeltaNetTest, LowPrecisionInputs) {
  for (DType qk : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (DType v : {DType::kF32, DType::kF16, DType::kBF16}) {
      GdnSpec s;
      s.qk = qk, s.v = v, s.T = 20, s.K = s.V = 128, s.l2norm = true, s.kda = v == DType::kBF16;
      ExpectMatches(s);
    }
  }
}

TEST(CpuGatedDeltaNetTest, GenericHeadSizes) {
  struct Size {
    int64_t k, v;
  };
  for (Size z : {Size{48, 48}, Size{20, 7}, Size{128, 64}, Size{5, 130}, Size{1, 1}}) {
    for (bool kda : {false, true}) {
      GdnSpec s;
      s.K = z.k, s.V = z.v, s.T = 13, s.kda = kda, s.l2norm = true;
      std::string key;
      ExpectMatches(s, &key);
      EXPECT_EQ(key, absl::StrCat("gated_delta_net[k=any,v=any,kda=", kda, "]"));
    }
  }
  GdnSpec s;
  s.K = s.V = 256, s.T = 5, s.l2norm = true;
  std::string key;
  ExpectMatches(s, &key);
  EXPECT_EQ(key, "gated_delta_net[k=256,v=256,kda=0]");
}

TEST(CpuGatedDeltaNetTest, FinalStateMayAliasState) {
  for (int64_t T : {1, 20, 70}) {
    for (bool kda : {false, true}) {
      for (int threads : {1, 4}) {
        GdnSpec s;
        s.B = 3, s.T = T, s.Hv = 2, s.K = s.V = 64, s.kda = kda, s.alias = true;
        s.threads = threads, s.l2norm = true;
        ExpectMatches(s);
      }
    }
  }
  GdnSpec s;  // one head over several threads: column groups share one state
  s.B = 1, s.Hv = 1, s.T = 3, s.K = s.V = 128, s.alias = true, s.threads = 8;
  ExpectMatches(s);
}

// Decode's column blocks of 1, 2, 4 and 8 vectors (V = 120 on AVX2 and 240
// on AVX-512 are 8 + 4 + 2 + 1 vectors) and final_state written with
// streaming stores, which the default takes only for states of at least
// half the LLC. Through the backend: streaming stores need its aligned
// tensors.
TEST(CpuGatedDeltaNetTest, DecodeBlockWidthsAndStreamingStores) {
  auto backend = CreateCpuBackend(BackendOptions{2});
  ASSERT_TRUE(backend.ok()) << backend.status();
  const char* old = std::getenv("KILN_CPU_GDN");
  const std::string saved = old ? old : "";
  for (const char* tuning : {"vecs=1", "vecs=2,stream=1", "vecs=4,stream=1", "vecs=8,stream=1", "stream=0"}) {
    setenv("KILN_CPU_GDN", tuning, 1);
    for (bool kda : {false, true}) {
      for (int64_t v : {120, 240}) {
        for (bool alias : {false, true}) {
          GdnSpec s;
          s.B = 2, s.Hv = 3, s.K = 64, s.V = v, s.kda = kda, s.alias = alias, s.l2norm = true;
          EXPECT_TRUE(testing_util::MatchesReference(**backend, MakeCase(s))) << tuning << " " << Name(s);
        }
      }
    }
  }
  if (old) {
    setenv("KILN_CPU_GDN", saved.c_str(), 1);
  } else {
    unsetenv("KILN_CPU_GDN");
  }
}

TEST(CpuGatedDeltaNetTest, StridedViewsAndThreads) {
  for (int threads : {1, 2, 3, 8}) {
    for (bool view : {false, true}) {
      for (int64_t T : {1, 33}) {  // decode works on the state rows directly
        GdnSpec s;
        s.B = 1, s.Hv = 1, s.T = T, s.K = 64, s.V = 64, s.view = view, s.threads = threads;
        s.l2norm = true, s.scale = 0.3;
        ExpectMatches(s);
        s.K = 32, s.V = 96, s.kda = true;
        ExpectMatches(s);
        s.K = 20, s.V = 7;  // rows not whole vectors: the local copy
        ExpectMatches(s);
      }
    }
  }
}

TEST(CpuGatedDeltaNetTest, ThroughTheCpuBackendInPlace) {
  auto backend = CreateCpuBackend(BackendOptions{2});
  ASSERT_TRUE(backend.ok()) << backend.status();
  for (int64_t T : {1, 40}) {
    GdnSpec s;
    s.B = 2, s.T = T, s.Hk = 2, s.Hv = 4, s.K = s.V = 128, s.kda = T == 1, s.l2norm = true;
    s.alias = true;
    const OpCase c = MakeCase(s);
    EXPECT_TRUE(testing_util::MatchesReference(**backend, c)) << Name(s);
  }
}

}  // namespace
}  // namespace kiln
