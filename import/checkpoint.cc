#include "import/checkpoint.h"

#include <filesystem>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "graph/message_text.h"
#include "import/gguf_model.h"
#include "import/hf_config.h"

namespace kiln::import {
namespace {

namespace fs = std::filesystem;

// Tensors a checkpoint may hold that kiln's text-model graph does not read.
bool KnownToSkip(absl::string_view name) {
  return absl::StartsWith(name, "mtp.") ||                   // Qwen3-Next / 3.5 multi-token prediction
         absl::StartsWith(name, "model.visual.") ||          // Qwen3.5's vision tower
         absl::StartsWith(name, "visual.") ||
         absl::EndsWith(name, "rotary_emb.inv_freq");         // old checkpoints' rope tables
}

}  // namespace

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& path) {
  auto out = std::unique_ptr<Checkpoint>(new Checkpoint());
  std::error_code ec;
  if (!fs::exists(path, ec)) return absl::NotFoundError(absl::StrCat("\"", path, "\" does not exist"));
  if (!fs::is_directory(path, ec) && absl::EndsWith(path, ".gguf")) {
    auto file = GgufFile::Open(path);
    if (!file.ok()) return file.status();
    out->gguf_ = std::move(*file);
    auto config = ModelConfigFromGguf(*out->gguf_);
    if (!config.ok()) return config.status();
    out->config_ = std::move(*config);
    return out;
  }
  const fs::path folder = fs::is_directory(path, ec) ? fs::path(path) : fs::path(path).parent_path();
  const fs::path config_path = (folder.empty() ? fs::path(".") : folder) / "config.json";
  if (!fs::exists(config_path, ec)) {
    return absl::NotFoundError(absl::StrCat("\"", path, "\" is neither a .gguf file nor a Hugging Face folder: no \"",
                                            config_path.string(), "\""));
  }
  auto config = ReadHfConfig(config_path.string());
  if (!config.ok()) return config.status();
  out->config_ = std::move(*config);
  auto st = SafetensorsCheckpoint::Open(path);
  if (!st.ok()) return st.status();
  out->safetensors_ = std::move(*st);
  return out;
}

std::string Checkpoint::Describe() const {
  if (gguf_) return absl::StrCat("GGUF v", gguf_->version(), ", ", gguf_->tensors().size(), " tensors");
  const size_t files = safetensors_->files().size();
  return absl::StrCat("safetensors, ", files, files == 1 ? " file, " : " files, ", safetensors_->tensor_count(),
                      " tensors");
}

absl::StatusOr<models::Weight> Checkpoint::Read(absl::string_view name, std::string* stored_name) {
  models::Weight w;
  if (gguf_) {
    auto cpp = GgufNameFor(name);
    const GgufTensor* t = cpp ? gguf_->Find(*cpp) : nullptr;
    if (!t) return absl::NotFoundError(absl::StrCat("the GGUF file has no tensor for ", QuoteName(name)));
    *stored_name = t->name;
    w.dtype = t->dtype;
    w.dims = t->dims;
    w.data = gguf_->Data(*t);
    if (t->size > 0) locations_[w.data->data] = FileRange{gguf_->path(), t->offset};
    return w;
  }
  auto entry = safetensors_->Find(name);
  // Qwen3.5's multimodal checkpoints keep the text model under
  // "model.language_model." (model_config.h).
  if (!entry.ok() && config_.family == models::Family::kQwen3_5 && absl::StartsWith(name, "model.")) {
    entry = safetensors_->Find(absl::StrCat("model.language_model.", name.substr(6)));
  }
  if (!entry.ok()) return entry.status();
  const SafetensorsTensor& t = *entry->tensor;
  *stored_name = t.name;
  auto dtype = entry->file->KilnDType(t);
  if (!dtype.ok()) return dtype.status();
  if (t.dims.empty() || t.dims.size() > 4) {
    return absl::InvalidArgumentError(absl::StrCat("tensor ", QuoteName(t.name), " of \"", entry->file->path(),
                                                   "\" has rank ", t.dims.size(), "; kiln weights have rank 1 to 4"));
  }
  w.dtype = *dtype;
  w.dims = t.dims;
  w.data = entry->file->Data(t);
  if (t.size > 0) locations_[w.data->data] = FileRange{entry->file->path(), t.offset};
  return w;
}

absl::StatusOr<models::Weight> Checkpoint::Get(absl::string_view name) {
  if (auto it = cache_.find(name); it != cache_.end()) return it->second;
  std::string stored;
  auto w = Read(name, &stored);
  if (!w.ok()) return w.status();
  used_[stored] = true;
  cache_.emplace(std::string(name), *w);
  return w;
}

std::vector<std::string> Checkpoint::Unused() const {
  std::vector<std::string> names;
  auto consider = [&](const std::string& name) {
    if (!used_.count(name) && !KnownToSkip(name)) names.push_back(name);
  };
  if (gguf_) {
    for (const GgufTensor& t : gguf_->tensors()) consider(t.name);
  } else {
    for (const auto& file : safetensors_->files()) {
      for (const SafetensorsTensor& t : file->tensors()) consider(t.name);
    }
  }
  return names;
}

}  // namespace kiln::import
