// The pieces of a Llama/Qwen3-style decoder layer, shared by the example
// graphs: the attention layer (with its KV cache) and the SwiGLU MLP.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "examples/random_weights.h"
#include "graph/builder.h"
#include "graph/graph.h"

namespace kiln::examples {

// Sizes of one step: batch, tokens and the KV cache length.
struct StepShape {
  int64_t batch = 1;
  int64_t tokens = 1;      // 1 for decode
  int64_t max_seq = 4096;  // KV cache rows
  bool decode = true;
};

// The graph inputs every layer of one step reads.
struct StepInputs {
  StepShape shape;
  Tensor pos;   // i32 [T]: the tokens' positions (rope, KV cache rows)
  Tensor mask;  // decode: f32 [1,1,1,S_max] additive; prefill: none (causal)
};

// Qwen3-0.6B's attention and MLP sizes.
struct AttentionShape {
  int64_t hidden = 1024;
  int64_t q_heads = 16;
  int64_t kv_heads = 8;
  int64_t head_dim = 128;
  int64_t ffn = 3072;
  double rope_theta = 1000000.0;
  double eps = 1e-6;
};

// Declares the step's inputs: x [B,T,hidden] f32, and for decode pos and mask
// (prefill positions are the constant 0..T-1).
StepInputs AddStepInputs(GraphBuilder& b, const StepShape& shape, int64_t hidden, Tensor& x);

// A contiguous reshape of `t` (a zero-copy view).
Tensor Reshape(GraphBuilder& b, Tensor t, std::vector<int64_t> dims);

// rms_norm(x) * weight over the last dim.
Tensor RmsNorm(GraphBuilder& b, RandomWeights& w, const std::string& name, Tensor x,
               double eps);

// x @ W^T with W a fresh f16 weight "<name>.weight" [out, in].
Tensor Linear(GraphBuilder& b, RandomWeights& w, const std::string& name, Tensor x,
              int64_t out);

// x + down(silu(gate(h)) * up(h)) with h = rms_norm(x).
Tensor MlpLayer(GraphBuilder& b, RandomWeights& w, const std::string& prefix, Tensor x,
                const AttentionShape& s);

// x + o_proj(attention(rms_norm(x))): q/k/v projections, per-head q/k norms,
// neox rope, GQA flash attention over the layer's KV cache (graph states
// "<prefix>.k_cache"/"<prefix>.v_cache", f16 [B,S_max,Hkv*D], whose next
// values are written by write_rows at rows `pos`).
Tensor AttentionLayer(GraphBuilder& b, RandomWeights& w, const std::string& prefix, Tensor x,
                      const StepInputs& in, const AttentionShape& s);

absl::StatusOr<Graph> MakeAttentionBlock(bool decode, uint64_t seed, int64_t prefill_tokens = 512);

}  // namespace kiln::examples
