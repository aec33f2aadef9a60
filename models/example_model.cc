#include "models/example_model.h"

#include <chrono>
#include <filesystem>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "graph/message_text.h"
#include "proto/graph_io.h"
#include "proto/mapped_file.h"

namespace kiln::models {
namespace {

// Weights mapped from the file WriteRandomWeightsFile wrote; each constant's
// origin names its range of the file, so SaveGraph can reference it there.
class MappedWeightSource : public WeightSource {
 public:
  MappedWeightSource(std::shared_ptr<const MappedFile> file, const std::vector<WeightPlace>& places)
      : file_(std::move(file)) {
    for (const WeightPlace& p : places) places_.emplace(p.name, p);
  }
  absl::StatusOr<Weight> Get(absl::string_view name) override {
    auto it = places_.find(name);
    if (it == places_.end()) return absl::NotFoundError(absl::StrCat("no weight ", QuoteName(name)));
    const WeightPlace& p = it->second;
    if (p.offset + p.bytes > file_->size()) return absl::DataLossError("the weights file is shorter than written");
    auto c = std::make_shared<ConstantData>();
    c->data = file_->data() + p.offset;
    c->size = p.bytes;
    c->keepalive = file_;
    c->origin = absl::StrCat("file:", file_->identity(), ":", p.offset, ":", p.bytes);
    return Weight{p.dtype, p.dims, std::move(c)};
  }

 private:
  std::shared_ptr<const MappedFile> file_;
  absl::flat_hash_map<std::string, WeightPlace> places_;
};

}  // namespace

std::string DecodePathFor(const std::string& prefill_path) {
  constexpr absl::string_view kExt = ".kgraph";
  if (absl::EndsWith(prefill_path, kExt)) {
    return absl::StrCat(prefill_path.substr(0, prefill_path.size() - kExt.size()), ".decode", kExt);
  }
  return absl::StrCat(prefill_path, ".decode.kgraph");
}

absl::StatusOr<ModelEntries> BuildModelEntries(const ModelConfig& config, WeightSource& weights,
                                               const ExampleModelOptions& o, const std::string& decode_file_name) {
  EntryOptions prefill{.tokens = o.prefill_tokens, .context = o.context, .cache_dtype = o.cache_dtype,
                       .last_logits_only = true};
  EntryOptions decode{.tokens = 1, .context = o.context, .cache_dtype = o.cache_dtype};
  auto p = BuildModelGraph(config, weights, prefill);
  if (!p.ok()) return p.status();
  auto d = BuildModelGraph(config, weights, decode);
  if (!d.ok()) return d.status();
  if (!decode_file_name.empty()) p->metadata[std::string(kModelEntryKeyPrefix) + "decode"] = decode_file_name;
  for (Graph* g : {&*p, &*d}) {
    g->metadata["seed"] = absl::StrCat(o.weights.seed);
    g->metadata["description"] = absl::StrCat(config.name, " (", config.num_layers, " layers) with seeded random ",
                                              DTypeName(o.weights.projection_dtype), " weights, ",
                                              g == &*p ? absl::StrCat("prefilling ", o.prefill_tokens, " tokens")
                                                       : std::string("decoding one token"),
                                              " over a ", o.context, "-cell ", DTypeName(o.cache_dtype), " KV cache");
  }
  return ModelEntries{*std::move(p), *std::move(d)};
}

absl::StatusOr<ExampleModelFiles> WriteExampleModel(const ModelConfig& config, const ExampleModelOptions& o,
                                                    const std::string& path) {
  ExampleModelFiles files;
  files.prefill = path;
  files.decode = DecodePathFor(path);
  files.weights = WeightsPathFor(path);
  const auto t0 = std::chrono::steady_clock::now();
  auto places = WriteRandomWeightsFile(config, o.weights, files.weights);
  if (!places.ok()) return places.status();
  files.weights_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const WeightPlace& p : *places) files.weight_bytes += static_cast<int64_t>(p.bytes);
  auto mapped = MappedFile::Open(files.weights, /*no_follow=*/true);
  if (!mapped.ok()) return mapped.status();
  MappedWeightSource source(*mapped, *places);
  auto entries = BuildModelEntries(config, source, o, std::filesystem::path(files.decode).filename().string());
  if (!entries.ok()) return entries.status();
  SaveOptions save;
  save.reference_files = {files.weights};
  if (auto st = SaveGraph(entries->decode, files.decode, save); !st.ok()) return st;
  if (auto st = SaveGraph(entries->prefill, files.prefill, save); !st.ok()) return st;
  return files;
}

}  // namespace kiln::models
