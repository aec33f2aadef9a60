// Grids of matmul, linear, softmax, the norms and rope.
#include <array>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "conformance/grids.h"

namespace kiln::conformance {
namespace {

// (a, b) dtype pairs of matmul.
constexpr std::array<std::pair<DType, DType>, 5> kMatmulDTypes = {{
    {DType::kF32, DType::kF32}, {DType::kF16, DType::kF16}, {DType::kBF16, DType::kBF16},
    {DType::kF32, DType::kF16}, {DType::kBF16, DType::kF32}}};

void AddMatmul(std::vector<OpSubGrid>& grids) {
  SubGrid sizes;
  sizes.name = "matmul.sizes";
  sizes.axes = {{"m", {1, 3, 17, 64, 129}}, {"k", {1, 7, 32, 100, 257}}, {"n", {1, 5, 33, 128, 255}},
                {"dtypes", Indices(kMatmulDTypes.size())}};
  sizes.make = [](const Point& p) -> std::optional<Case> {
    const auto [ta, tb] = kMatmulDTypes[p.at("dtypes")];
    return Case{.op = "matmul", .inputs = {In(ta, {p.at("m"), p.at("k")}), In(tb, {p.at("k"), p.at("n")})}};
  };
  sizes.strength = 2;
  grids.push_back({"matmul", std::move(sizes)});

  // Batch dims (broadcast both ways) and views.
  SubGrid batch;
  batch.name = "matmul.batch";
  batch.axes = {{"batch", Indices(5)},
                {"layout", Indices(5)},  // contiguous; a padded; b padded; a permuted; b permuted
                {"dtype", DTypes({DType::kF32, DType::kF16, DType::kBF16})},
                {"size", {0, 1}}};
  batch.make = [](const Point& p) -> std::optional<Case> {
    const int64_t m = p.at("size") ? 33 : 5, k = p.at("size") ? 64 : 19, n = p.at("size") ? 65 : 7;
    static const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> batches = {
        {{2}, {2}}, {{3, 1}, {1, 4}}, {{}, {3}}, {{2, 3}, {}}, {{4}, {1}}};
    std::vector<int64_t> a = batches[p.at("batch")].first, b = batches[p.at("batch")].second;
    a.insert(a.end(), {m, k});
    b.insert(b.end(), {k, n});
    const DType t = AsDType(p.at("dtype"));
    const int64_t layout = p.at("layout");
    auto ia = WithLayout(In(t, a), layout == 1 ? kPadded : layout == 3 ? kPermuted : kContiguous);
    auto ib = WithLayout(In(t, b), layout == 2 ? kPadded : layout == 4 ? kPermuted : kContiguous);
    if (!ia || !ib) return std::nullopt;
    return Case{.op = "matmul", .inputs = {*ia, *ib}};
  };
  batch.strength = 2;
  grids.push_back({"matmul", std::move(batch)});
}

void AddLinear(std::vector<OpSubGrid>& grids) {
  SubGrid g;
  g.name = "linear";
  g.axes = {{"x_rank", {1, 2, 3, 4}},
            {"k", {7, 32, 100, 256, 1024}},
            {"n", {1, 33, 128}},
            {"w", DTypes({DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0})},
            {"x", DTypes({DType::kF32, DType::kF16, DType::kBF16})},
            {"bias", {0, 1}},
            {"layout", Indices(4)}};  // contiguous; x padded; weight padded; x permuted
  g.make = [](const Point& p) -> std::optional<Case> {
    const int64_t k = p.at("k"), n = p.at("n");
    const DType wt = AsDType(p.at("w"));
    if (wt == DType::kQ8_0 && k % kQ8BlockSize != 0) return std::nullopt;
    static const std::vector<int64_t> lead = {2, 2, 3};
    std::vector<int64_t> x(lead.end() - (p.at("x_rank") - 1), lead.end());
    x.push_back(k);
    const int64_t layout = p.at("layout");
    auto ix = WithLayout(In(AsDType(p.at("x")), x), layout == 1 ? kPadded : layout == 3 ? kPermuted : kContiguous);
    auto iw = WithLayout(In(wt, {n, k}, UnitRows()), layout == 2 ? kPadded : kContiguous);
    if (!ix || !iw) return std::nullopt;
    Case c{.op = "linear", .inputs = {*ix, *iw}};
    if (p.at("bias")) c.inputs.push_back(In(DType::kF32, {n}));
    return c;
  };
  g.strength = 2;
  grids.push_back({"linear", std::move(g)});

  // A few rows of x (several sequences decoding: the GPU GEMVs' multi-row
  // variants) over weight rows longer than one chunk of x staged in
  // shared memory (Vulkan: 512-1024 values), K a multiple of the chunk or not.
  SubGrid rows;
  rows.name = "linear_gemv_rows";
  rows.axes = {{"m", {2, 5, 8}},
               {"k", {1544, 2048}},
               {"n", {33, 130}},
               {"w", DTypes({DType::kF32, DType::kF16, DType::kBF16})}};
  rows.make = [](const Point& p) -> std::optional<Case> {
    return Case{.op = "linear",
                .inputs = {In(DType::kF32, {p.at("m"), p.at("k")}),
                           In(AsDType(p.at("w")), {p.at("n"), p.at("k")}, UnitRows())}};
  };
  rows.strength = 2;
  rows.quick_extra = 0;
  grids.push_back({"linear", std::move(rows)});

  // Decode rows (1, 2 and 7: the GEMVs' 8-row variants) over q8_0 weights
  // long enough that a GPU GEMV stages them in several chunks (OpenCL: 128
  // blocks) or loops over their block pairs, with K a multiple of 256
  // (whole 16-byte pieces) or not.
  SubGrid q8;
  q8.name = "linear_q8_long";
  q8.axes = {{"k", {4128, 8192}}, {"m", {1, 2, 7}}, {"layout", {0, 2}}};  // contiguous; weight padded
  q8.make = [](const Point& p) -> std::optional<Case> {
    auto iw = WithLayout(In(DType::kQ8_0, {5, p.at("k")}, UnitRows()), p.at("layout") == 2 ? kPadded : kContiguous);
    if (!iw) return std::nullopt;
    return Case{.op = "linear", .inputs = {In(DType::kF32, {p.at("m"), p.at("k")}), *iw}};
  };
  q8.quick_extra = 0;
  grids.push_back({"linear", std::move(q8)});
}

void AddSoftmax(std::vector<OpSubGrid>& grids) {
  SubGrid g;
  g.name = "softmax";
  g.axes = {{"shape", Indices(5)},
            {"dtype", DTypes({DType::kF32, DType::kF16, DType::kBF16})},
            {"mask", Indices(4)},  // none; one row broadcast; the full shape; [rows, cols] broadcast
            {"kind", {static_cast<int64_t>(MaskKind::kFinite), static_cast<int64_t>(MaskKind::kScattered),
                      static_cast<int64_t>(MaskKind::kRows)}},
            {"mask_dtype", DTypes({DType::kF32, DType::kF16})},
            {"scale", {0, 1}},
            {"layout", {kContiguous, kPadded, kPermuted}}};
  g.make = [](const Point& p) -> std::optional<Case> {
    static const std::vector<std::vector<int64_t>> shapes = {
        {1}, {7}, {3, 4099}, {2, 3, 5, 67}, {1, 8, 32, 512}};
    const std::vector<int64_t>& dims = shapes[p.at("shape")];
    auto x = WithLayout(In(AsDType(p.at("dtype")), dims, Normal(3)), p.at("layout"));
    if (!x) return std::nullopt;
    Case c{.op = "softmax", .inputs = {*x}};
    if (p.at("scale")) c.attrs["scale"] = 0.125;
    const int64_t mask = p.at("mask");
    if (mask > 0) {
      std::vector<int64_t> md = {dims.back()};
      if (mask == 2) md = dims;
      if (mask == 3) md = dims.size() >= 2 ? std::vector<int64_t>(dims.end() - 2, dims.end()) : dims;
      c.inputs.push_back(In(AsDType(p.at("mask_dtype")), md, Mask(static_cast<MaskKind>(p.at("kind")))));
    }
    return c;
  };
  g.strength = 2;
  grids.push_back({"softmax", std::move(g)});
}

void AddNorm(std::vector<OpSubGrid>& grids, const std::string& op) {
  const bool affine = op != "l2_norm";
  SubGrid g;
  g.name = op;
  g.axes = {{"shape", Indices(5)},
            {"dtype", DTypes({DType::kF32, DType::kF16, DType::kBF16})},
            {"eps", {0, 1}},
            {"layout", {kContiguous, kPadded, kPermuted}},
            {"values", {0, 1, 2}}};  // N(0,1); U(4,6) (a large mean); specials
  if (affine) {
    g.axes.push_back({"weight", {0, 1, 2}});  // absent; f32; the dtype of x
    g.axes.push_back({"bias", {0, 1}});
  }
  g.make = [op, affine](const Point& p) -> std::optional<Case> {
    static const std::vector<std::vector<int64_t>> shapes = {{1}, {7}, {3, 4096}, {2, 3, 5, 67}, {4, 1, 4099}};
    const std::vector<int64_t>& dims = shapes[p.at("shape")];
    const DType t = AsDType(p.at("dtype"));
    const int64_t values = p.at("values");
    const Dist d = values == 0 ? Normal() : values == 1 ? Uniform(4, 6) : Specials();
    auto x = WithLayout(In(t, dims, d), p.at("layout"));
    if (!x) return std::nullopt;
    Case c{.op = op, .inputs = {*x}};
    if (p.at("eps")) c.attrs["eps"] = 1e-2;
    if (affine) {
      const int64_t w = p.at("weight");
      c.inputs.push_back(w == 0 ? Absent() : In(w == 1 ? DType::kF32 : t, {dims.back()}, Uniform(0.5, 1.5)));
      if (p.at("bias")) c.inputs.push_back(In(DType::kF32, {dims.back()}));
      else if (w == 0) c.inputs.pop_back();  // trailing absent inputs are left off
    }
    return c;
  };
  grids.push_back({op, std::move(g)});
}

Case RopeCase(int64_t B, int64_t T, int64_t H, int64_t D, DType t, int64_t rotary, const std::string& mode,
              bool per_batch, int64_t max_pos, double theta, int64_t layout) {
  std::vector<int64_t> pos = per_batch ? std::vector<int64_t>{B, T} : std::vector<int64_t>{T};
  Case c{.op = "rope",
         .inputs = {*WithLayout(In(t, {B, T, H, D}), layout), In(DType::kI32, pos, Ints(0, max_pos))},
         .attrs = {{"mode", mode}}};
  if (rotary) c.attrs["rotary_dim"] = rotary;
  if (theta != 10000) c.attrs["theta"] = theta;
  return c;
}

void AddRope(std::vector<OpSubGrid>& grids) {
  SubGrid shapes;
  shapes.name = "rope.shapes";
  shapes.axes = {{"b", {1, 2}}, {"t", {1, 7, 64}}, {"h", {1, 4}}, {"d", {32, 64, 80, 128}},
                 {"rotary", {0, 1}},  // all of D; a part (D/2, even)
                 {"mode", {0, 1}}};
  shapes.make = [](const Point& p) -> std::optional<Case> {
    const int64_t d = p.at("d");
    return RopeCase(p.at("b"), p.at("t"), p.at("h"), d, DType::kF32, p.at("rotary") ? d / 4 * 2 : 0,
                    p.at("mode") ? "interleaved" : "neox", false, 4095, 10000, kContiguous);
  };
  grids.push_back({"rope", std::move(shapes)});

  SubGrid misc;
  misc.name = "rope.misc";
  misc.axes = {{"positions", {0, 1}},  // [T]; [B,T]
               {"max_pos", {4095, 131071}},
               {"theta", {10000, 1000000}},
               {"dtype", DTypes({DType::kF32, DType::kF16, DType::kBF16})},
               {"layout", {kContiguous, kPadded, kPermuted}},
               {"mode", {0, 1}}};
  misc.make = [](const Point& p) -> std::optional<Case> {
    return RopeCase(2, 7, 4, 64, AsDType(p.at("dtype")), 0, p.at("mode") ? "interleaved" : "neox",
                    p.at("positions"), p.at("max_pos"), static_cast<double>(p.at("theta")), p.at("layout"));
  };
  misc.strength = 2;
  grids.push_back({"rope", std::move(misc)});
}

}  // namespace

void AddLinearAlgebraGrids(std::vector<OpSubGrid>& grids) {
  AddMatmul(grids);
  AddLinear(grids);
  AddSoftmax(grids);
  for (const char* op : {"rms_norm", "layer_norm", "l2_norm"}) AddNorm(grids, op);
  AddRope(grids);
}

}  // namespace kiln::conformance
