#include "examples/example_graphs.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "examples/attention_block.h"
#include "examples/hybrid_block.h"

namespace kiln {

std::vector<std::string> ExampleNames() {
  return {"attention-block-decode", "attention-block-prefill", "hybrid-block-decode",
          "hybrid-block-prefill"};
}

absl::StatusOr<Graph> MakeExample(absl::string_view name, uint64_t seed) {
  ExampleOptions options;
  options.seed = seed;
  return MakeExample(name, options);
}

absl::StatusOr<Graph> MakeExample(absl::string_view name, const ExampleOptions& options) {
  const uint64_t seed = options.seed;
  const int64_t tokens = options.prefill_tokens;
  if (tokens < 1 || tokens > 4096) {
    return absl::InvalidArgumentError(absl::StrCat("prefill tokens must be in 1..4096 (the KV cache), not ", tokens));
  }
  absl::StatusOr<Graph> g;
  if (name == "attention-block-decode") {
    g = examples::MakeAttentionBlock(/*decode=*/true, seed);
  } else if (name == "attention-block-prefill") {
    g = examples::MakeAttentionBlock(/*decode=*/false, seed, tokens);
  } else if (name == "hybrid-block-decode") {
    g = examples::MakeHybridBlock(/*decode=*/true, seed);
  } else if (name == "hybrid-block-prefill") {
    g = examples::MakeHybridBlock(/*decode=*/false, seed, tokens);
  } else {
    return absl::NotFoundError(absl::StrCat("no example named '", name,
                                            "'; examples: ", absl::StrJoin(ExampleNames(), ", ")));
  }
  if (!g.ok()) {
    return absl::Status(g.status().code(),
                        absl::StrCat("example '", name, "': ", g.status().message()));
  }
  g->metadata["example"] = std::string(name);
  g->metadata["seed"] = absl::StrCat(seed);
  return g;
}

}  // namespace kiln
