// The CPU flash_attn kernels against the reference, over a grid of head sizes,
// GQA ratios, query/key lengths, masks (random, whole -inf tiles,
// block-diagonal multi-sequence, all-masked rows), causal, sinks, softcap,
// ALiBi, K/V dtypes, strided views and output dtypes.
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backends/cpu/cpu_backend.h"
#include "gtest/gtest.h"
#include "ops/flash_attn.h"
#include "tests/backends/cpu_kernel_test_util.h"

namespace kiln {
namespace {

using testing_util::Absent;
using testing_util::In;
using testing_util::InputView;
using testing_util::KernelMatchesReference;
using testing_util::OpCase;
using testing_util::OpInstance;
using testing_util::ViewIn;

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

enum class MaskKind {
  kNone,
  kRandom,      // -inf with probability 1/4, else in [-2, 0]
  kTiles,       // whole 32-key tiles -inf (for every row), the rest random
  kBlockDiag,   // N sequences in one cache: row i sees only its sequence's cells
  kRowsMasked,  // every third query row entirely -inf
};

struct FaSpec {
  int64_t B = 1, Sq = 1, Skv = 64, Hq = 4, Hkv = 1, Dk = 64, Dv = 64;
  DType q = DType::kF32, kv = DType::kF32, mask_dtype = DType::kF16;
  MaskKind mask = MaskKind::kNone;
  bool mask_per_batch = false, mask_per_head = false;
  int sequences = 3;  // kBlockDiag
  bool causal = false, sinks = false;
  double softcap = 0, max_bias = 0, scale = 0;
  std::string out_dtype = "f32";
  bool view = false;       // q, k, v as strided windows into NaN-padded bases
  bool nan_dead = false;   // K/V cells masked for every query row hold NaN
  int64_t nan_cell = -1;   // this cell's V (and K with nan_cell_k) is NaN, seen or not
  bool nan_cell_k = false;
  int threads = 2;
};

std::string Name(const FaSpec& s) {
  return absl::StrCat("B", s.B, " Sq", s.Sq, " Skv", s.Skv, " Hq", s.Hq, " Hkv", s.Hkv, " Dk", s.Dk,
                      " Dv", s.Dv, " q=", DTypeName(s.q), " kv=", DTypeName(s.kv), " mask=",
                      static_cast<int>(s.mask), s.mask_per_batch ? "b" : "", s.mask_per_head ? "h" : "",
                      " causal=", s.causal, " sinks=", s.sinks, " softcap=", s.softcap,
                      " max_bias=", s.max_bias, " out=", s.out_dtype, " view=", s.view,
                      " threads=", s.threads);
}

// The mask value of (mask batch mb, mask head mh, row i, key j).
double MaskValue(const FaSpec& s, int64_t mb, int64_t mh, int64_t i, int64_t j, std::mt19937& rng) {
  std::uniform_real_distribution<double> u(-2, 0);
  std::uniform_int_distribution<int> coin(0, 3);
  switch (s.mask) {
    case MaskKind::kNone:
      return 0;
    case MaskKind::kRandom:
      return coin(rng) == 0 ? kNegInf : u(rng);
    case MaskKind::kTiles: {
      const int64_t tile = j / 32;
      if ((tile + mb + mh) % 3 == 1) return kNegInf;
      return coin(rng) == 0 ? kNegInf : u(rng);
    }
    case MaskKind::kBlockDiag: {
      // Sequence n owns cells [n*L, (n+1)*L); query row i belongs to n = i % N.
      const int64_t n = i % s.sequences, L = (s.Skv + s.sequences - 1) / s.sequences;
      return j / L == n ? 0.0 : kNegInf;
    }
    case MaskKind::kRowsMasked:
      return i % 3 == 1 ? kNegInf : u(rng);
  }
  return 0;
}

OpCase MakeCase(const FaSpec& s) {
  OpCase c;
  c.op = "flash_attn";
  auto in = [&](DType t, std::vector<int64_t> dims) {
    return s.view ? ViewIn(t, std::move(dims)) : In(t, std::move(dims));
  };
  c.inputs.push_back(in(s.q, {s.B, s.Sq, s.Hq, s.Dk}));
  c.inputs.push_back(in(s.kv, {s.B, s.Skv, s.Hkv, s.Dk}));
  c.inputs.push_back(in(s.kv, {s.B, s.Skv, s.Hkv, s.Dv}));
  if (s.mask != MaskKind::kNone) {
    c.inputs.push_back(In(s.mask_dtype, {s.mask_per_batch ? s.B : 1, s.mask_per_head ? s.Hq : 1, s.Sq, s.Skv}));
  } else {
    c.inputs.push_back(Absent());
  }
  if (s.sinks) c.inputs.push_back(In(DType::kF32, {s.Hq}, -1, 3));
  c.attrs["scale"] = s.scale;
  c.attrs["softcap"] = s.softcap;
  c.attrs["max_bias"] = s.max_bias;
  c.attrs["causal"] = s.causal;
  c.attrs["out_dtype"] = s.out_dtype;
  return c;
}

// Builds the instance and writes the mask (and NaN into dead K/V cells).
OpInstance MakeFaInstance(const FaSpec& s, uint32_t seed) {
  auto inst = testing_util::MakeInstance(MakeCase(s), seed);
  EXPECT_TRUE(inst.ok()) << inst.status();
  if (!inst.ok()) return {};
  std::mt19937 rng(seed + 7);
  const TensorView mask = InputView(*inst, kFlashAttnMask);
  if (mask.present()) {
    ForEachIndex(mask.rank, mask.dims, [&](const int64_t* idx) {
      StoreElement(mask, idx, MaskValue(s, idx[0], idx[1], idx[2], idx[3], rng));
    });
  }
  if (s.nan_dead) {
    const TensorView k = InputView(*inst, kFlashAttnK), v = InputView(*inst, kFlashAttnV);
    for (int64_t b = 0; b < s.B; ++b) {
      for (int64_t j = 0; j < s.Skv; ++j) {
        bool dead = true;
        for (int64_t h = 0; h < s.Hq && dead; ++h) {
          for (int64_t i = 0; i < s.Sq && dead; ++i) {
            bool masked = s.causal && CausalMasked(i, j, s.Sq, s.Skv);
            if (mask.present()) {
              const int64_t mi[4] = {b % mask.dims[0], h % mask.dims[1], i, j};
              masked |= LoadElement(mask, mi) == kNegInf;
            }
            dead = masked;
          }
        }
        if (!dead) continue;
        for (const TensorView* t : {&k, &v}) {
          for (int64_t h = 0; h < s.Hkv; ++h) {
            const int64_t idx[3] = {b, j, h};
            std::byte* row = t->row(idx);
            std::memset(row, 0xff, RowBytes(t->dtype, t->dims[3]));  // NaN (q8_0: NaN scales)
          }
        }
      }
    }
  }
  if (s.nan_cell >= 0) {
    for (int i = 0; i < (s.nan_cell_k ? 2 : 1); ++i) {
      const TensorView t = InputView(*inst, i == 0 ? kFlashAttnV : kFlashAttnK);
      for (int64_t b = 0; b < s.B; ++b) {
        for (int64_t h = 0; h < s.Hkv; ++h) {
          const int64_t idx[3] = {b, s.nan_cell, h};
          std::memset(t.row(idx), 0xff, RowBytes(t.dtype, t.dims[3]));
        }
      }
    }
  }
  return std::move(*inst);
}

void ExpectMatches(const FaSpec& s, std::string* key = nullptr, uint32_t seed = 1) {
  OpInstance inst = MakeFaInstance(s, seed);
  if (inst.graph.nodes.empty()) return;
  EXPECT_TRUE(KernelMatchesReference(inst, s.threads, {}, key)) << Name(s);
}

TEST(CpuFlashAttnTest, HeadSizesPickTheirSpecialization) {
  struct Size {
    int64_t dk, dv;
    bool specialized;
  };
  const Size sizes[] = {{32, 32, true},   {40, 40, true},   {64, 64, true},   {72, 72, true},
                        {80, 80, true},   {96, 96, true},   {112, 112, true}, {128, 128, true},
                        {192, 128, true}, {192, 192, true}, {256, 256, true}, {48, 48, false},
                        {20, 36, false},  {3, 5, false},    {130, 70, false}};
  for (const Size& z : sizes) {
    for (DType kv : {DType::kF32, DType::kF16}) {
      FaSpec s;
      s.Sq = 3, s.Skv = 113, s.Hq = 4, s.Hkv = 2, s.Dk = z.dk, s.Dv = z.dv, s.kv = kv;
      s.mask = MaskKind::kRandom;
      std::string key;
      ExpectMatches(s, &key);
      const std::string want = z.specialized ? absl::StrCat("flash_attn.decode[dk=", z.dk, ",dv=", z.dv, "]")
                                             : "flash_attn.decode[dk=any,dv=any]";
      EXPECT_EQ(key, want) << Name(s);
    }
  }
}

TEST(CpuFlashAttnTest, GqaByQueryAndKeyLengths) {
  for (int64_t g : {1, 2, 4, 8}) {
    for (int64_t sq : {1, 3, 32, 75}) {
      for (int64_t skv : {1, 113, 512}) {
        FaSpec s;
        s.Hq = g, s.Hkv = 1, s.Sq = sq, s.Skv = skv, s.kv = DType::kF16;
        s.mask = (sq + skv) % 2 ? MaskKind::kRandom : MaskKind::kNone;
        ExpectMatches(s);
        s.Hq = 2 * g, s.Hkv = 2, s.causal = true, s.mask = MaskKind::kNone;
        s.B = sq * skv > 4096 ? 1 : 2;  // keeps the f64 reference quick
        ExpectMatches(s);  // Sq > Skv: the first rows see no key and are zeros
      }
    }
  }
}

TEST(CpuFlashAttnTest, KvDtypes) {
  for (DType kv : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0}) {
    for (DType q : {DType::kF32, DType::kF16, DType::kBF16}) {
      FaSpec s;
      s.q = q, s.kv = kv, s.Sq = 5, s.Skv = 200, s.Hq = 8, s.Hkv = 2, s.Dk = 128, s.Dv = 128;
      s.mask = MaskKind::kTiles;
      ExpectMatches(s);
      s.Dk = s.Dv = 64, s.Sq = 1;
      ExpectMatches(s);
    }
  }
}

TEST(CpuFlashAttnTest, MixedKvDtypes) {
  FaSpec s;
  s.kv = DType::kF16, s.Sq = 4, s.Skv = 77, s.Dk = 64, s.Dv = 64;
  OpCase c = MakeCase(s);  // k f16, v q8_0
  c.inputs[kFlashAttnV] = In(DType::kQ8_0, {s.B, s.Skv, s.Hkv, s.Dv});
  auto mixed = testing_util::MakeInstance(c, 3);
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  EXPECT_TRUE(KernelMatchesReference(*mixed, 2));
}

TEST(CpuFlashAttnTest, MasksWithWholeMaskedTiles) {
  for (MaskKind m : {MaskKind::kRandom, MaskKind::kTiles, MaskKind::kBlockDiag, MaskKind::kRowsMasked}) {
    for (DType md : {DType::kF16, DType::kF32}) {
      for (int per : {0, 1, 2, 3}) {
        FaSpec s;
        s.B = 2, s.Sq = 7, s.Skv = 300, s.Hq = 4, s.Hkv = 2, s.kv = DType::kF16;
        s.mask = m, s.mask_dtype = md, s.mask_per_batch = per & 1, s.mask_per_head = per & 2;
        ExpectMatches(s);
      }
    }
  }
}

TEST(CpuFlashAttnTest, MultiSequenceDecodeOverASharedCache) {
  // N sequences, one query row each, sharing a cache of N*L cells.
  for (int n : {2, 4}) {
    for (int64_t L : {100, 256}) {
      FaSpec s;
      s.Sq = n, s.Skv = n * L, s.sequences = n, s.Hq = 8, s.Hkv = 2, s.Dk = s.Dv = 128;
      s.kv = DType::kF16, s.mask = MaskKind::kBlockDiag, s.nan_dead = true;
      ExpectMatches(s);
    }
  }
}

TEST(CpuFlashAttnTest, MaskedCellsAreNeverRead) {
  for (DType kv : {DType::kF32, DType::kF16, DType::kQ8_0}) {
    for (MaskKind m : {MaskKind::kTiles, MaskKind::kBlockDiag}) {
      FaSpec s;
      s.Sq = 6, s.Skv = 257, s.Hq = 4, s.Hkv = 1, s.kv = kv, s.mask = m, s.nan_dead = true;
      ExpectMatches(s);
      s.causal = true, s.Sq = 40, s.mask = MaskKind::kNone;
      ExpectMatches(s);
    }
  }
}

TEST(CpuFlashAttnTest, NonFiniteCellsReachOnlyTheRowsThatSeeThem) {
  // A NaN cell seen by some rows of a tile and masked for others (another
  // sequence, or past their causal limit): only the rows that see it are
  // NaN, as in the reference. Decode (Sq <= 8) and prefill kernels.
  for (int64_t sq : {4, 8, 24}) {
    for (bool k_too : {false, true}) {
      FaSpec s;
      s.Sq = sq, s.Skv = 200, s.Hq = 8, s.Hkv = 2, s.kv = DType::kF16;
      s.mask = MaskKind::kBlockDiag, s.sequences = 2, s.nan_cell = 5, s.nan_cell_k = k_too;
      ExpectMatches(s);
      s.mask = MaskKind::kNone, s.causal = true, s.nan_cell = s.Skv - 2;  // the last 2 rows see it
      ExpectMatches(s);
      s.mask = MaskKind::kRandom, s.mask_per_head = true, s.causal = false, s.nan_cell = 40;
      ExpectMatches(s);
    }
  }
}

TEST(CpuFlashAttnTest, AllMaskedRowsAreZero) {
  FaSpec s;
  s.Sq = 9, s.Skv = 70, s.Hq = 4, s.Hkv = 2, s.mask = MaskKind::kRowsMasked;
  OpInstance inst = MakeFaInstance(s, 5);
  std::vector<testing_util::HostBytes> out;
  ASSERT_TRUE(KernelMatchesReference(inst, 2, {}, nullptr, &out));
  const TensorInfo& t = inst.graph.tensors[inst.graph.nodes[0].outputs[0]];
  const TensorView o = TensorView::Of(t, out[0].bytes.data());
  ForEachIndex(o.rank, o.dims, [&](const int64_t* idx) {
    if (idx[1] % 3 == 1) {
      ASSERT_EQ(LoadElement(o, idx), 0.0) << "row " << idx[1];
    }
  });
}

TEST(CpuFlashAttnTest, CausalSinksSoftcapAlibi) {
  for (bool causal : {false, true}) {
    for (bool sinks : {false, true}) {
      for (double softcap : {0.0, 5.0}) {
        for (double max_bias : {0.0, 8.0}) {
          FaSpec s;
          s.B = 2, s.Sq = 33, s.Skv = 97, s.Hq = 12, s.Hkv = 4, s.Dk = s.Dv = 64;
          s.kv = DType::kF16, s.causal = causal, s.sinks = sinks, s.softcap = softcap;
          s.max_bias = max_bias, s.scale = 0.2;
          s.mask = max_bias > 0 ? MaskKind::kRandom : MaskKind::kNone;
          s.mask_per_head = max_bias > 0;
          ExpectMatches(s);
        }
      }
    }
  }
}

TEST(CpuFlashAttnTest, SinksWithAllMaskedRows) {
  FaSpec s;
  s.Sq = 6, s.Skv = 40, s.Hq = 4, s.sinks = true, s.mask = MaskKind::kRowsMasked;
  ExpectMatches(s);
}

TEST(CpuFlashAttnTest, StridedViewsAndOutputDtypes) {
  for (DType kv : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0}) {
    for (const char* out : {"f32", "f16", "bf16"}) {
      FaSpec s;
      s.B = 2, s.Sq = 4, s.Skv = 90, s.Hq = 6, s.Hkv = 3, s.Dk = s.Dv = 64;
      s.kv = kv, s.q = DType::kF16, s.view = true, s.out_dtype = out, s.mask = MaskKind::kTiles;
      ExpectMatches(s);
    }
  }
}

TEST(CpuFlashAttnTest, SplitKeysForFewWorkItems) {
  // One KV head, one query row: the key range is split across threads.
  for (int threads : {1, 2, 3, 8}) {
    for (MaskKind m : {MaskKind::kNone, MaskKind::kTiles, MaskKind::kBlockDiag}) {
      FaSpec s;
      s.Sq = 1, s.Skv = 2000, s.Hq = 4, s.Hkv = 1, s.Dk = s.Dv = 128, s.kv = DType::kF16;
      s.mask = m, s.sequences = 1, s.threads = threads, s.sinks = true;
      ExpectMatches(s);
    }
  }
  FaSpec s;  // everything masked in some splits: the merge must not make NaN
  s.Sq = 2, s.Skv = 4000, s.Hq = 2, s.Hkv = 1, s.mask = MaskKind::kBlockDiag, s.sequences = 2;
  s.threads = 4, s.nan_dead = true;
  ExpectMatches(s);
}

TEST(CpuFlashAttnTest, EmptyKeys) {
  FaSpec s;
  s.Sq = 3, s.Skv = 0, s.Hq = 2;
  ExpectMatches(s);
}

TEST(CpuFlashAttnTest, ThroughTheCpuBackend) {
  auto backend = CreateCpuBackend(BackendOptions{2});
  ASSERT_TRUE(backend.ok()) << backend.status();
  FaSpec s;
  s.B = 2, s.Sq = 5, s.Skv = 150, s.Hq = 8, s.Hkv = 2, s.Dk = s.Dv = 128, s.kv = DType::kF16;
  s.causal = true, s.sinks = true, s.view = true;
  EXPECT_TRUE(testing_util::MatchesReference(**backend, MakeCase(s)));
}

}  // namespace
}  // namespace kiln
