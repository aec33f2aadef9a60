#include "import/model_import.h"

#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "base/atomic_file.h"
#include "graph/message_text.h"
#include "import/checkpoint.h"
#include "proto/graph_io.h"

namespace kiln::import {
namespace {

namespace fs = std::filesystem;

float LoadFloat(DType t, const std::byte* p) {
  uint16_t h;
  switch (t) {
    case DType::kF32: {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
    case DType::kF16: std::memcpy(&h, p, 2); return F16ToF32(h);
    default: std::memcpy(&h, p, 2); return BF16ToF32(h);
  }
}

void StoreFloat(DType t, float f, std::byte* p) {
  if (t == DType::kF32) {
    std::memcpy(p, &f, 4);
    return;
  }
  const uint16_t h = t == DType::kF16 ? F32ToF16(f) : F32ToBF16(f);
  std::memcpy(p, &h, 2);
}

// The checkpoint's weights with float ones converted to one dtype (held in
// memory until saved); q8_0 ones pass through.
class ConvertingSource : public models::WeightSource {
 public:
  ConvertingSource(models::WeightSource& base, DType to) : base_(base), to_(to) {}
  absl::StatusOr<models::Weight> Get(absl::string_view name) override {
    if (auto it = done_.find(std::string(name)); it != done_.end()) return it->second;
    auto w = base_.Get(name);
    if (!w.ok() || !IsFloat(w->dtype) || w->dtype == to_) return w;
    int64_t n = 1;
    for (int64_t d : w->dims) n *= d;
    auto bytes = std::make_shared<std::vector<std::byte>>(static_cast<size_t>(n * ElementSize(to_)));
    const int in = ElementSize(w->dtype), out = ElementSize(to_);
    for (int64_t i = 0; i < n; ++i) StoreFloat(to_, LoadFloat(w->dtype, w->data->data + i * in), bytes->data() + i * out);
    auto c = std::make_shared<ConstantData>();
    c->data = bytes->data();
    c->size = bytes->size();
    c->keepalive = bytes;
    models::Weight converted{to_, w->dims, std::move(c)};
    done_.emplace(std::string(name), converted);
    return converted;
  }

 private:
  models::WeightSource& base_;
  DType to_;
  std::map<std::string, models::Weight> done_;
};

// True when `file` lies inside `folder` once both are resolved.
bool InsideFolder(const fs::path& folder, const std::string& file) {
  std::error_code ec;
  const fs::path f = fs::canonical(file, ec);
  if (ec) return false;
  const fs::path relative = f.lexically_relative(folder);
  return !relative.empty() && *relative.begin() != "..";
}

}  // namespace

std::string DecodePathFor(const std::string& prefill_path) {
  absl::string_view stem = prefill_path;
  absl::ConsumeSuffix(&stem, ".kgraph");
  return absl::StrCat(stem, ".decode.kgraph");
}

absl::StatusOr<ImportResult> ImportModel(const std::string& checkpoint_path, const std::string& output,
                                         const ImportOptions& options) {
  auto checkpoint = Checkpoint::Open(checkpoint_path);
  if (!checkpoint.ok()) return checkpoint.status();
  Checkpoint& ckpt = **checkpoint;
  ImportResult result;
  result.config = ckpt.config();
  result.source = ckpt.Describe();
  result.prefill_path = output;
  result.decode_path = DecodePathFor(output);

  std::unique_ptr<ConvertingSource> converting;
  models::WeightSource* source = &ckpt;
  if (options.dtype) {
    converting = std::make_unique<ConvertingSource>(ckpt, *options.dtype);
    source = converting.get();
  }
  models::EntryOptions entry;
  entry.context = options.context;
  entry.cache_dtype = options.cache_dtype;
  entry.tokens = options.tokens;
  auto prefill = models::BuildModelGraph(result.config, *source, entry);
  if (!prefill.ok()) return prefill.status();
  entry.tokens = 1;
  auto decode = models::BuildModelGraph(result.config, *source, entry);
  if (!decode.ok()) return decode.status();
  if (const std::vector<std::string> unused = ckpt.Unused(); !unused.empty()) {
    return absl::UnimplementedError(absl::StrCat(
        "\"", checkpoint_path, "\" has ", unused.size(), " tensors the ", result.config.name,
        " graph would not read (parts of the model kiln does not build): ", ShortJoin(unused)));
  }
  prefill->metadata[std::string(models::kModelEntryKeyPrefix) + "decode"] =
      fs::path(result.decode_path).filename().string();
  prefill->metadata["model.source"] = result.source;
  decode->metadata["model.source"] = result.source;

  // Each distinct weight: in place, or into the shared weights file.
  std::error_code ec;
  const fs::path folder = fs::weakly_canonical(fs::absolute(fs::path(output)).parent_path(), ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("output \"", output, "\": ", ec.message()));
  SaveOptions save;
  std::vector<const ConstantData*> to_write;
  std::set<const std::byte*> seen;
  for (const Graph* g : {&*prefill, &*decode}) {
    for (const TensorInfo& t : g->tensors) {
      if (!t.constant || t.constant->size == 0 || !seen.insert(t.constant->data).second) continue;
      const auto loc = ckpt.locations().find(t.constant->data);
      if (loc == ckpt.locations().end() && t.constant->size < 4096) continue;  // small: inline
      ++result.weights;
      if (loc != ckpt.locations().end() && loc->second.offset % static_cast<uint64_t>(ExternalMapAlignment(t.dtype)) == 0 &&
          InsideFolder(folder, loc->second.path)) {
        save.in_place.emplace(t.constant->data, loc->second);
        result.bytes_in_place += static_cast<int64_t>(t.constant->size);
      } else {
        to_write.push_back(t.constant.get());
        if (loc != ckpt.locations().end() && InsideFolder(folder, loc->second.path)) ++result.unaligned_in_folder;
      }
    }
  }
  if (!to_write.empty()) {
    result.weights_path = WeightsPathFor(output);
    auto file = AtomicFile::Create(result.weights_path);
    if (!file.ok()) return file.status();
    for (const ConstantData* c : to_write) {
      const uint64_t pad = (kExternalAlignment - (*file)->size() % kExternalAlignment) % kExternalAlignment;
      if (auto st = (*file)->WriteZeros(pad); !st.ok()) return st;
      save.in_place.emplace(c->data, FileRange{result.weights_path, (*file)->size()});
      if (auto st = (*file)->Write(c->data, c->size); !st.ok()) return st;
      result.bytes_written += static_cast<int64_t>(c->size);
    }
    // The weights are complete before any graph names them.
    if (auto st = (*file)->Commit(); !st.ok()) return st;
  }
  // Decode first: the file a user names appears last, its entries complete.
  if (auto st = SaveGraph(*decode, result.decode_path, save); !st.ok()) return st;
  if (auto st = SaveGraph(*prefill, result.prefill_path, save); !st.ok()) return st;
  return result;
}

}  // namespace kiln::import
