// The public GraphBuilder: graph/builder.h's, with host-memory constants and
// the public dtypes.
#include "absl/strings/str_join.h"
#include "api/internal.h"

namespace kiln::api {
namespace {

kiln::Tensor In(Tensor t) { return kiln::Tensor{t.id}; }
Tensor Out(kiln::Tensor t) { return Tensor{t.id}; }

}  // namespace

GraphBuilder::GraphBuilder(std::string graph_name) {
  try {
    impl_ = std::make_unique<Impl>(std::move(graph_name));
  } catch (...) {
    // impl_ stays null: every call then reports the builder as unusable.
  }
}
GraphBuilder::GraphBuilder(GraphBuilder&&) noexcept = default;
GraphBuilder& GraphBuilder::operator=(GraphBuilder&&) noexcept = default;
GraphBuilder::~GraphBuilder() = default;

// Runs `f` on a usable builder, keeping the first error; returns `fallback`
// when the builder is unusable or `f` throws.
#define KILN_BUILDER_CALL(fallback, ...)                                                      \
  do {                                                                                        \
    if (!impl_ || !impl_->Status().ok()) return fallback;                                     \
    absl::Status guarded = Guard("GraphBuilder", [&]() -> absl::Status { __VA_ARGS__ });      \
    if (!guarded.ok() && impl_->status.ok()) impl_->status = guarded;                         \
    return fallback;                                                                          \
  } while (0)

Tensor GraphBuilder::Input(std::string name, DType dtype, std::vector<int64_t> dims) {
  Tensor out;
  KILN_BUILDER_CALL(out, {
    out = Out(impl_->builder.Input(std::move(name), ToInternal(dtype), std::move(dims)));
    return absl::OkStatus();
  });
}

Tensor GraphBuilder::Constant(std::string name, DType dtype, std::vector<int64_t> dims, const void* data,
                              size_t bytes) {
  Tensor out;
  KILN_BUILDER_CALL(out, {
    auto want = ContiguousBytes(dtype, dims);
    if (!want.ok()) return absl::InvalidArgumentError(absl::StrCat("constant '", name, "': ", want.status().message()));
    if (*want != bytes || (bytes > 0 && data == nullptr)) {
      return absl::InvalidArgumentError(absl::StrCat("constant '", name, "' ", DName(dtype), " [",
                                                     absl::StrJoin(dims, ","), "] needs ", *want, " bytes, given ",
                                                     data == nullptr ? 0 : bytes));
    }
    out = Out(impl_->builder.Constant(std::move(name), ToInternal(dtype), std::move(dims),
                                      kiln::ConstantData::Copy(data, bytes)));
    return absl::OkStatus();
  });
}

Tensor GraphBuilder::ConstantView(std::string name, DType dtype, std::vector<int64_t> dims,
                                  std::shared_ptr<const void> owner, const void* data, size_t bytes) {
  Tensor out;
  KILN_BUILDER_CALL(out, {
    auto want = ContiguousBytes(dtype, dims);
    if (!want.ok()) return absl::InvalidArgumentError(absl::StrCat("constant '", name, "': ", want.status().message()));
    if (*want != bytes || (bytes > 0 && data == nullptr)) {
      return absl::InvalidArgumentError(absl::StrCat("constant '", name, "' ", DName(dtype), " [",
                                                     absl::StrJoin(dims, ","), "] needs ", *want, " bytes, given ",
                                                     data == nullptr ? 0 : bytes));
    }
    auto c = std::make_shared<kiln::ConstantData>();
    c->data = static_cast<const std::byte*>(data);
    c->size = bytes;
    c->keepalive = std::move(owner);
    out = Out(impl_->builder.Constant(std::move(name), ToInternal(dtype), std::move(dims), std::move(c)));
    return absl::OkStatus();
  });
}

Tensor GraphBuilder::View(Tensor base, std::vector<int64_t> dims, std::vector<int64_t> strides, int64_t offset,
                          std::string name) {
  Tensor out;
  KILN_BUILDER_CALL(out, {
    out = Out(impl_->builder.View(In(base), std::move(dims), std::move(strides), offset, std::move(name)));
    return absl::OkStatus();
  });
}

std::vector<Tensor> GraphBuilder::Op(std::string_view op, std::vector<Tensor> inputs, Attrs attrs,
                                     std::string name) {
  std::vector<Tensor> out;
  KILN_BUILDER_CALL(out, {
    std::vector<kiln::Tensor> in;
    for (Tensor t : inputs) in.push_back(In(t));
    kiln::Attrs a = std::move(attrs);  // the same map and variant types
    for (kiln::Tensor t : impl_->builder.Op(absl::string_view(op.data(), op.size()), std::move(in), std::move(a),
                                            std::move(name))) {
      out.push_back(Out(t));
    }
    return absl::OkStatus();
  });
}

Tensor GraphBuilder::Op1(std::string_view op, std::vector<Tensor> inputs, Attrs attrs, std::string name) {
  std::vector<Tensor> out = Op(op, std::move(inputs), std::move(attrs), std::move(name));
  return out.empty() ? Tensor{} : out[0];
}

void GraphBuilder::Output(Tensor t) {
  KILN_BUILDER_CALL(, {
    impl_->builder.Output(In(t));
    return absl::OkStatus();
  });
}

void GraphBuilder::State(Tensor input, Tensor next) {
  KILN_BUILDER_CALL(, {
    impl_->builder.State(In(input), In(next));
    return absl::OkStatus();
  });
}

void GraphBuilder::SetMetadata(std::string key, std::string value) {
  KILN_BUILDER_CALL(, {
    impl_->builder.SetMetadata(std::move(key), std::move(value));
    return absl::OkStatus();
  });
}

void GraphBuilder::Rename(Tensor t, std::string name) {
  KILN_BUILDER_CALL(, {
    impl_->builder.Rename(In(t), std::move(name));
    return absl::OkStatus();
  });
}

#undef KILN_BUILDER_CALL

TensorDesc GraphBuilder::Describe(Tensor t) const {
  if (!impl_ || t.id < 0 || t.id >= static_cast<int>(impl_->builder.graph().tensors.size())) return {};
  try {
    return DescOf(impl_->builder.info(In(t)));
  } catch (...) {
    return {};
  }
}

absl::Status GraphBuilder::status() const {
  if (!impl_) return absl::FailedPreconditionError("GraphBuilder: moved from, or out of host memory when made");
  return impl_->Status();
}

}  // namespace kiln::api
