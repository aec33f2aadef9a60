// RoPE with scaled frequencies (rope_scaling "linear" and "llama3", as
// transformers' modeling_rope_utils computes them). kiln's rope op takes
// theta and rotary_dim only, so a scaled rope rotates with cos/sin tables
// [context, rotary_dim/2] computed here, gathered by position, and
// elementwise ops: out_a = a cos - b sin, out_b = b cos + a sin over the
// pairs (a, b) of the rope op's mode (neox halves or interleaved), the dims
// from rotary_dim on passed through.
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "models/layer_builder.h"

namespace kiln::models {
namespace {

constexpr double kPi = 3.14159265358979323846;

}  // namespace

std::vector<double> ScaledInvFreq(const ModelConfig& c, int64_t rotary_dim) {
  const RopeScaling& s = c.rope_scaling;
  std::vector<double> f(static_cast<size_t>(rotary_dim / 2));
  for (size_t i = 0; i < f.size(); ++i) {
    double inv = std::pow(c.rope_theta, -2.0 * static_cast<double>(i) / static_cast<double>(rotary_dim));
    if (s.type == "linear") {
      inv /= s.factor;
    } else if (s.type == "llama3") {
      const double low_wavelen = s.original_max_position / s.low_freq_factor;
      const double high_wavelen = s.original_max_position / s.high_freq_factor;
      const double wavelen = 2 * kPi / inv;
      if (wavelen > low_wavelen) {
        inv /= s.factor;
      } else if (wavelen >= high_wavelen) {  // between the two: interpolate
        const double smooth = (s.original_max_position / wavelen - s.low_freq_factor) /
                              (s.high_freq_factor - s.low_freq_factor);
        inv = (1 - smooth) * inv / s.factor + smooth * inv;
      }
    }
    f[i] = inv;
  }
  return f;
}

Tensor ScaledRope(LayerBuilder& lb, Tensor x, const std::string& node) {
  if (!lb.ok()) return {};
  const ModelConfig& c = lb.config();
  GraphBuilder& b = lb.b();
  const std::vector<int64_t> dims = b.info(x).dims;  // [1, T, H, D]
  const int64_t T = dims[1], H = dims[2], D = dims[3];
  const int64_t rd = c.rotary_dim == 0 ? D : c.rotary_dim, half = rd / 2;
  const int64_t S = lb.options().context;
  // One cos and one sin table per graph, shared by every attention layer.
  Tensor cos_t = lb.Table("rope.cos"), sin_t = lb.Table("rope.sin");
  if (!cos_t.valid()) {
    const std::vector<double> inv = ScaledInvFreq(c, rd);
    std::vector<float> cv(static_cast<size_t>(S * half)), sv(cv.size());
    for (int64_t p = 0; p < S; ++p) {
      for (int64_t i = 0; i < half; ++i) {
        cv[p * half + i] = static_cast<float>(std::cos(static_cast<double>(p) * inv[i]));
        sv[p * half + i] = static_cast<float>(std::sin(static_cast<double>(p) * inv[i]));
      }
    }
    cos_t = b.Constant("rope.cos", DType::kF32, {S, half}, ConstantData::Copy(cv.data(), cv.size() * 4));
    sin_t = b.Constant("rope.sin", DType::kF32, {S, half}, ConstantData::Copy(sv.data(), sv.size() * 4));
    lb.SetTable("rope.cos", cos_t);
    lb.SetTable("rope.sin", sin_t);
  }
  const bool pairs = c.rope_interleaved;
  // The angles of this step's positions, shaped to broadcast over heads.
  const std::vector<int64_t> angle_dims = pairs ? std::vector<int64_t>{T, 1, half, 1} : std::vector<int64_t>{1, T, 1, half};
  Tensor cos = lb.Reshape(lb.Op("gather", {cos_t, lb.pos}, node + ".cos"), angle_dims);
  Tensor sin = lb.Reshape(lb.Op("gather", {sin_t, lb.pos}, node + ".sin"), angle_dims);
  auto slice = [&](Tensor t, int64_t axis, int64_t start, int64_t end, const std::string& name) {
    return lb.Op("slice", {t}, name, {{"axis", axis}, {"start", start}, {"end", end}});
  };
  auto rotate = [&](Tensor a, Tensor bb, int64_t axis) {
    Tensor out_a = lb.Op("sub", {lb.Op("mul", {a, cos}, node + ".a_cos"), lb.Op("mul", {bb, sin}, node + ".b_sin")},
                         node + ".out_a");
    Tensor out_b = lb.Op("add", {lb.Op("mul", {bb, cos}, node + ".b_cos"), lb.Op("mul", {a, sin}, node + ".a_sin")},
                         node + ".out_b");
    return lb.Op("concat", {out_a, out_b}, node + ".rotated", {{"axis", axis}});
  };
  if (!pairs) {
    Tensor rotated = rotate(slice(x, 3, 0, half, node + ".a"), slice(x, 3, half, rd, node + ".b"), 3);
    if (rd == D) return rotated;
    return lb.Op("concat", {rotated, slice(x, 3, rd, D, node + ".pass")}, node, {{"axis", int64_t{3}}});
  }
  // Interleaved: pairs (2i, 2i+1) are the last axis of a [T, H, D/2, 2] view.
  Tensor xp = lb.Reshape(lb.Op("contiguous", {x}, node + ".x"), {T, H, D / 2, 2});
  Tensor rot = slice(xp, 2, 0, half, node + ".pairs");
  Tensor rotated = rotate(slice(rot, 3, 0, 1, node + ".a"), slice(rot, 3, 1, 2, node + ".b"), 3);
  if (rd < D) {
    rotated = lb.Op("concat", {rotated, slice(xp, 2, half, D / 2, node + ".pass")}, node + ".joined",
                    {{"axis", int64_t{2}}});
  }
  return lb.Reshape(rotated, {1, T, H, D});
}

}  // namespace kiln::models
