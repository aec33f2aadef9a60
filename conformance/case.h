// A conformance case: one op node with fully described inputs (dtype, dims,
// memory layout, value distribution) and attributes. The grids (grids.cc) are
// lists of these; the runner (runner.h) turns one into a graph, inputs and a
// verdict per backend.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "graph/dtype.h"
#include "graph/node.h"

namespace kiln::conformance {

// Attention-mask patterns (flash_attn, softmax). Rows are query rows (dim -2),
// columns keys (dim -1); every leading slice (batch, head) gets its own draw.
enum class MaskKind {
  kFinite,     // finite values in [-2, 0], no -inf
  kScattered,  // finite, with ~15% of entries -inf
  kTiles,      // whole -inf tiles: key blocks of `param` keys (32, 64, 128)
               // masked for all rows or for 16-row blocks, plus scattered -inf
  kRows,       // about a quarter of the rows entirely -inf
  kWindow,     // sliding window of `param` keys ending at the row's position
  kMultiSeq,   // `param` sequences sharing one KV cache: block diagonal, each
               // sequence's rows see only its own cells (causally)
  kUnwritten,  // keys from `param` on are -inf for every row (unwritten cache
               // cells; the K/V inputs hold NaN there, see Dist::nan_from)
};

// How an input's values are drawn (seeded; see inputs.h).
struct Dist {
  enum Kind {
    kNormal,    // N(0, a^2); with unit_rows, divided by sqrt(last dim)
    kUniform,   // U(a, b)
    kInts,      // integers in [a, b], with repeats
    kDistinct,  // distinct integers in [a, b] (needs enough of them)
    kOneBad,    // integers in [a, b] except one, which is b + 1 (an error case)
    kGate,      // GDN log-space gate: -exp(U(ln 1e-3, ln 20)), in (-20, 0)
    kBeta,      // U(0.02, 0.98): strictly inside (0, 1)
    kSpecials,  // N(0, a^2) with ~3% NaN and ~5% large values +-[20, 100]
    kMask,      // an attention mask (mask, param)
  };
  Kind kind = kNormal;
  double a = 1, b = 0;
  bool unit_rows = false;
  MaskKind mask = MaskKind::kFinite;
  int64_t param = 0;
  // >= 0: elements whose index along dim 1 is >= nan_from hold NaN (K/V cache
  // cells that were never written; the mask hides them).
  int64_t nan_from = -1;
};

inline Dist Normal(double stddev = 1) { return {.kind = Dist::kNormal, .a = stddev}; }
inline Dist UnitRows() { return {.kind = Dist::kNormal, .a = 1, .unit_rows = true}; }
inline Dist Uniform(double lo, double hi) { return {.kind = Dist::kUniform, .a = lo, .b = hi}; }
inline Dist Ints(int64_t lo, int64_t hi) { return {.kind = Dist::kInts, .a = double(lo), .b = double(hi)}; }
inline Dist DistinctInts(int64_t lo, int64_t hi) {
  return {.kind = Dist::kDistinct, .a = double(lo), .b = double(hi)};
}
inline Dist OneBadInt(int64_t lo, int64_t hi) { return {.kind = Dist::kOneBad, .a = double(lo), .b = double(hi)}; }
inline Dist Gate() { return {.kind = Dist::kGate}; }
inline Dist Beta() { return {.kind = Dist::kBeta}; }
inline Dist Specials(double stddev = 1) { return {.kind = Dist::kSpecials, .a = stddev}; }
inline Dist Mask(MaskKind kind, int64_t param = 0) { return {.kind = Dist::kMask, .mask = kind, .param = param}; }

// One input of a case. The tensor is a graph input; with `padded` or `perm`
// it is a view of a larger graph input (its base):
//   padded: every outer dim of the base is one longer and each row has extra
//     elements (one q8_0 block for q8_0); the view starts inside, so its
//     offset and row strides are not those of a packed tensor. The padding
//     holds NaN bytes (0xff), so a kernel that reads it shows.
//   perm: the base stores the dims in the order perm (outermost first, a
//     permutation of 0..rank-2 followed by rank-1: rows stay contiguous), e.g.
//     {0,2,1,3} stores q [B,Sq,H,D] head-major as [B,H,Sq,D].
struct InputSpec {
  bool present = true;  // false: an absent optional input
  DType dtype = DType::kF32;
  std::vector<int64_t> dims;
  Dist dist;
  bool padded = false;
  std::vector<int> perm;  // empty: the identity

  bool is_view() const { return padded || !perm.empty(); }
};

inline InputSpec In(DType dtype, std::vector<int64_t> dims, Dist dist = Normal()) {
  return {.dtype = dtype, .dims = std::move(dims), .dist = dist};
}
inline InputSpec Absent() { return {.present = false}; }

// A tensor a node of a chained case reads: case input `index` (node < 0), or
// output `index` of chain node `node` (an earlier one). With view_dims it is
// read through a view of that tensor: dims, an element offset and element
// strides (empty: packed), innermost contiguous (e.g. a KV cache [B,S,H*D]
// read as [B,S,H,D], or q/k/v as channel windows of one projection).
struct ChainRef {
  int node = -1;
  int index = 0;  // -1 with node -1: an absent optional input
  std::vector<int64_t> view_dims;
  int64_t view_offset = 0;
  std::vector<int64_t> view_strides;
};
inline ChainRef CaseInput(int index) { return {.node = -1, .index = index}; }
inline ChainRef NodeOutput(int node, int index = 0) { return {.node = node, .index = index}; }
inline ChainRef AbsentRef() { return {.node = -1, .index = -1}; }
inline ChainRef ViewOf(ChainRef of, std::vector<int64_t> dims, int64_t offset = 0,
                       std::vector<int64_t> strides = {}) {
  of.view_dims = std::move(dims);
  of.view_offset = offset;
  of.view_strides = std::move(strides);
  return of;
}

// One node of a chained case.
struct ChainNode {
  std::string op;
  std::vector<ChainRef> inputs;
  Attrs attrs;
  // (input, output) pairs run in place; the input must be a case input (a
  // state), not a view.
  std::vector<std::pair<int, int>> inplace;
};

struct Case {
  std::string op;
  std::string group;  // the sub-grid it comes from, e.g. "flash_attn.masks"
  std::vector<InputSpec> inputs;  // in the op's input order
  Attrs attrs;
  // (input, output) pairs bound to the same memory: the op runs in place
  // (only pairs the op's OpSchema::inplace allows).
  std::vector<std::pair<int, int>> inplace;
  // The inputs make the op fail at run time (an index out of range): the
  // backend must return an error that names the node, not an output.
  bool expect_error = false;
  uint64_t seed = 0;  // input values; grids derive it from the description
  // Non-empty: a chained case (op "chain"): these nodes, in order, in one
  // split; `inputs` are the graph inputs they read (attrs and inplace above
  // are unused). Intermediates live in one arena buffer laid out like the
  // executor's memory plan (dead intermediates' bytes reused); the graph
  // outputs are the node outputs no later node reads and the in-place ones.
  std::vector<ChainNode> chain;

  bool is_chain() const { return !chain.empty(); }

  // A one-line description, unique within a grid: op, inputs, attributes.
  std::string Describe() const;
};

}  // namespace kiln::conformance
