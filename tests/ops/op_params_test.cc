// The per-op parameter resolvers (ops/op_params.h, ResolveFlashAttn,
// ResolveGatedDeltaNet): defaults, broadcast dims, strides of views in
// elements and bytes, and errors that name the node. And tolerances read
// from the op schemas.
#include "ops/op_params.h"

#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "graph/builder.h"
#include "gtest/gtest.h"
#include "ops/compare.h"
#include "ops/flash_attn.h"
#include "ops/conv1d_causal.h"
#include "ops/gated_delta_net.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "ops/softmax.h"
#include "ops/write_rows.h"
#include "ops/registry.h"

namespace kiln {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<int64_t> Strides(const TensorLayout& l) {
  return std::vector<int64_t>(l.strides.begin(), l.strides.begin() + l.rank);
}
std::vector<int64_t> ByteStrides(const TensorLayout& l) {
  return std::vector<int64_t>(l.byte_strides.begin(), l.byte_strides.begin() + l.rank);
}
std::vector<int64_t> Dims(const TensorLayout& l) {
  return std::vector<int64_t>(l.dims.begin(), l.dims.begin() + l.rank);
}

const Node& LastNode(const GraphBuilder& b) { return b.graph().nodes.back(); }

TEST(TensorLayout, ContiguousAndViews) {
  const TensorLayout c = LayoutOf(DType::kF16, std::vector<int64_t>{2, 3, 4});
  EXPECT_THAT(Strides(c), ElementsAre(12, 4, 1));
  EXPECT_THAT(ByteStrides(c), ElementsAre(24, 8, 2));
  EXPECT_TRUE(c.contiguous());
  EXPECT_TRUE(c.element_aligned);
  const int64_t idx[3] = {1, 2, 3};
  EXPECT_EQ(c.ElementOffset(idx), 12 + 8 + 3);

  // q8_0: outer strides count values of the block stream; innermost 1.
  const TensorLayout q8 = LayoutOf(DType::kQ8_0, std::vector<int64_t>{3, 64});
  EXPECT_THAT(Strides(q8), ElementsAre(64, 1));
  EXPECT_THAT(ByteStrides(q8), ElementsAre(2 * kQ8BlockBytes, 0));
  EXPECT_TRUE(q8.contiguous());

  // A view whose byte stride is not a whole number of elements: only byte
  // addressing works.
  TensorView v;
  v.data = reinterpret_cast<std::byte*>(&v);  // present; never read
  v.dtype = DType::kF32;
  v.rank = 2;
  v.dims = {2, 3};
  v.strides = {14, 4};
  const TensorLayout odd = LayoutOf(v);
  EXPECT_FALSE(odd.element_aligned);
  EXPECT_FALSE(odd.contiguous());
  EXPECT_THAT(Strides(odd), ElementsAre(-1, -1));
  EXPECT_THAT(ByteStrides(odd), ElementsAre(14, 4));

  EXPECT_FALSE(LayoutOf(TensorView{}).present);
}

TEST(ResolveFlashAttn, Defaults) {
  GraphBuilder b("g");
  Tensor q = b.Input("q", DType::kF32, {2, 3, 4, 64});
  Tensor k = b.Input("k", DType::kF16, {2, 5, 2, 64});
  Tensor v = b.Input("v", DType::kBF16, {2, 5, 2, 32});
  b.Op1("flash_attn", {q, k, v}, {}, "attn");
  ASSERT_TRUE(b.status().ok()) << b.status();
  auto p = ResolveFlashAttn(b.graph(), LastNode(b));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->B, 2);
  EXPECT_EQ(p->Sq, 3);
  EXPECT_EQ(p->Skv, 5);
  EXPECT_EQ(p->Hq, 4);
  EXPECT_EQ(p->Hkv, 2);
  EXPECT_EQ(p->Dk, 64);
  EXPECT_EQ(p->Dv, 32);
  EXPECT_EQ(p->gqa, 2);
  EXPECT_EQ(p->kv_head(3), 1);
  EXPECT_DOUBLE_EQ(p->scale, 0.125);  // 1/sqrt(Dk)
  EXPECT_EQ(p->softcap, 0);
  EXPECT_EQ(p->max_bias, 0);
  EXPECT_EQ(p->alibi_n, 0);
  EXPECT_EQ(p->slope(3), 1.0);
  EXPECT_FALSE(p->causal);
  EXPECT_FALSE(p->has_mask);
  EXPECT_FALSE(p->has_sinks);
  EXPECT_FALSE(p->mask.present);
  EXPECT_EQ(p->mask_b, 0);
  EXPECT_EQ(p->q.dtype, DType::kF32);
  EXPECT_EQ(p->k.dtype, DType::kF16);
  EXPECT_EQ(p->v.dtype, DType::kBF16);
  EXPECT_EQ(p->out.dtype, DType::kF32);
  EXPECT_THAT(Dims(p->out), ElementsAre(2, 3, 4, 32));
  EXPECT_THAT(Strides(p->out), ElementsAre(384, 128, 32, 1));
  EXPECT_TRUE(p->q.contiguous());
  EXPECT_EQ(p->q.storage, q.id);
  EXPECT_EQ(p->q.offset, 0);
}

TEST(ResolveFlashAttn, AttributesAndBroadcastMask) {
  GraphBuilder b("g");
  Tensor q = b.Input("q", DType::kF16, {2, 3, 4, 8});
  Tensor k = b.Input("k", DType::kF32, {2, 6, 4, 8});
  Tensor v = b.Input("v", DType::kF32, {2, 6, 4, 8});
  Tensor m1 = b.Input("m1", DType::kF16, {1, 1, 3, 6});
  Tensor m2 = b.Input("m2", DType::kF32, {2, 4, 3, 6});
  Tensor m3 = b.Input("m3", DType::kF32, {1, 4, 3, 6});
  Tensor sinks = b.Input("sinks", DType::kF32, {4});
  b.Op1("flash_attn", {q, k, v, m1}, {{"scale", 0.5}, {"causal", true}, {"softcap", 30.0},
                                      {"out_dtype", std::string("f16")}});
  ASSERT_TRUE(b.status().ok()) << b.status();
  auto p = ResolveFlashAttn(b.graph(), LastNode(b));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->has_mask);
  EXPECT_EQ(p->mask_b, 1);
  EXPECT_EQ(p->mask_h, 1);
  EXPECT_EQ(p->mask.dtype, DType::kF16);
  EXPECT_DOUBLE_EQ(p->scale, 0.5);
  EXPECT_DOUBLE_EQ(p->softcap, 30.0);
  EXPECT_TRUE(p->causal);
  EXPECT_EQ(p->out.dtype, DType::kF16);
  EXPECT_EQ(p->gqa, 1);

  b.Op1("flash_attn", {q, k, v, m2, sinks}, {{"max_bias", 8.0}});
  ASSERT_TRUE(b.status().ok()) << b.status();
  p = ResolveFlashAttn(b.graph(), LastNode(b));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->mask_b, 2);
  EXPECT_EQ(p->mask_h, 4);
  EXPECT_TRUE(p->has_sinks);
  EXPECT_THAT(Dims(p->sinks), ElementsAre(4));
  // ALiBi in closed form: n = 4, m0 = 2^(-8/4), slope(h) = m0^(h+1).
  EXPECT_EQ(p->alibi_n, 4);
  EXPECT_DOUBLE_EQ(p->alibi_m0, 0.25);
  EXPECT_DOUBLE_EQ(p->alibi_m1, 0.5);
  for (int h = 0; h < 4; ++h) {
    EXPECT_DOUBLE_EQ(p->slope(h), std::pow(p->alibi_m0, h + 1));
    EXPECT_DOUBLE_EQ(p->slope(h), AlibiSlope(h, 4, 8.0));
  }

  b.Op1("flash_attn", {q, k, v, m3});
  ASSERT_TRUE(b.status().ok()) << b.status();
  p = ResolveFlashAttn(b.graph(), LastNode(b));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->mask_b, 1);
  EXPECT_EQ(p->mask_h, 4);
}

// Decode reading a KV cache [1,4096,1024] f16 through a [1,4096,8,128] view,
// as the example graphs do; and a window of it at an offset.
TEST(ResolveFlashAttn, KvCacheView) {
  GraphBuilder b("g");
  Tensor q = b.Input("q", DType::kF32, {1, 1, 16, 128});
  Tensor kc = b.Input("k_cache", DType::kF16, {1, 4096, 1024});
  Tensor vc = b.Input("v_cache", DType::kF16, {1, 4096, 1024});
  Tensor k = b.View(kc, {1, 4096, 8, 128}, {4096 * 2048, 2048, 256, 2}, 0, "k_view");
  // Cells 16..(16+1024) of the V cache.
  Tensor v = b.View(vc, {1, 1024, 8, 128}, {4096 * 2048, 2048, 256, 2}, 16 * 2048, "v_view");
  Tensor k2 = b.View(kc, {1, 1024, 8, 128}, {4096 * 2048, 2048, 256, 2}, 16 * 2048, "k_view2");
  Tensor mask = b.Input("mask", DType::kF32, {1, 1, 1, 4096});
  b.Op1("flash_attn", {q, k, b.View(vc, {1, 4096, 8, 128}, {4096 * 2048, 2048, 256, 2}, 0), mask},
        {}, "attn_decode");
  ASSERT_TRUE(b.status().ok()) << b.status();
  auto p = ResolveFlashAttn(b.graph(), LastNode(b));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->Skv, 4096);
  EXPECT_EQ(p->Hkv, 8);
  EXPECT_EQ(p->gqa, 2);
  EXPECT_THAT(Strides(p->k), ElementsAre(4096 * 1024, 1024, 128, 1));
  EXPECT_THAT(ByteStrides(p->k), ElementsAre(4096 * 2048, 2048, 256, 2));
  EXPECT_EQ(p->k.storage, kc.id);
  EXPECT_EQ(p->k.offset, 0);
  EXPECT_TRUE(p->k.contiguous());  // the whole cache, seen as [1,4096,8,128]
  EXPECT_EQ(p->v.storage, vc.id);
  EXPECT_EQ(p->mask_b, 1);
  EXPECT_EQ(p->mask_h, 1);

  b.Op1("flash_attn", {b.View(q, {1, 1, 16, 128}, {16 * 512, 16 * 512, 512, 4}, 0), k2, v}, {},
        "attn_window");
  ASSERT_TRUE(b.status().ok()) << b.status();
  p = ResolveFlashAttn(b.graph(), LastNode(b));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->Skv, 1024);
  EXPECT_EQ(p->k.storage, kc.id);
  EXPECT_EQ(p->v.storage, vc.id);
  EXPECT_EQ(p->k.byte_offset, 16 * 2048);
  EXPECT_EQ(p->k.offset, 16 * 1024);  // elements
  EXPECT_EQ(p->v.offset, 16 * 1024);
  const int64_t idx[4] = {0, 2, 3, 5};  // token 2 of the window, head 3
  EXPECT_EQ(p->k.ElementOffset(idx), (16 + 2) * 1024 + 3 * 128 + 5);
}

TEST(ResolveFlashAttn, Q8CacheView) {
  // q8_0 cache [1,64,256] (2 heads of 128 per cell): 8 blocks, 272 bytes a row.
  GraphBuilder b("g");
  Tensor q = b.Input("q", DType::kF32, {1, 2, 4, 128});
  Tensor kc = b.Input("k_cache", DType::kQ8_0, {1, 64, 256});
  const int64_t row = 256 / kQ8BlockSize * kQ8BlockBytes;
  Tensor k = b.View(kc, {1, 32, 2, 128}, {64 * row, row, row / 2, 0}, 4 * row, "kq8");
  Tensor v = b.Input("v", DType::kF16, {1, 32, 2, 64});
  b.Op1("flash_attn", {q, k, v});
  ASSERT_TRUE(b.status().ok()) << b.status();
  auto p = ResolveFlashAttn(b.graph(), LastNode(b));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->k.dtype, DType::kQ8_0);
  EXPECT_TRUE(p->k.element_aligned);
  EXPECT_THAT(Strides(p->k), ElementsAre(64 * 256, 256, 128, 1));  // values
  EXPECT_EQ(p->k.offset, 4 * 256);
  EXPECT_THAT(ByteStrides(p->k), ElementsAre(64 * row, row, row / 2, 0));
}

// The kernel path (views, once per call) gives what the graph path gives,
// offsets aside.
TEST(ResolveFlashAttn, FromViewsMatchesGraph) {
  GraphBuilder b("g");
  Tensor q = b.Input("q", DType::kF32, {1, 2, 4, 16});
  Tensor k = b.Input("k", DType::kF32, {1, 3, 2, 16});
  Tensor v = b.Input("v", DType::kF32, {1, 3, 2, 16});
  Tensor m = b.Input("m", DType::kF16, {1, 4, 2, 3});
  b.Op1("flash_attn", {q, k, v, m}, {{"causal", true}});
  ASSERT_TRUE(b.status().ok());
  const Graph& g = b.graph();
  const Node& node = LastNode(b);
  std::vector<std::vector<std::byte>> bufs;
  std::vector<TensorView> in, out;
  for (int id : node.inputs) {
    bufs.emplace_back(ContiguousBytes(g.tensor(id).dtype, g.tensor(id).dims));
    in.push_back(TensorView::Of(g.tensor(id), bufs.back().data()));
  }
  in.push_back(TensorView{});  // sinks absent
  for (int id : node.outputs) {
    bufs.emplace_back(ContiguousBytes(g.tensor(id).dtype, g.tensor(id).dims));
    out.push_back(TensorView::Of(g.tensor(id), bufs.back().data()));
  }
  auto a = ResolveFlashAttn(g, node);
  auto c = ResolveFlashAttn(node, in, out);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(a->mask_h, c->mask_h);
  EXPECT_EQ(c->mask_h, 4);
  EXPECT_EQ(a->scale, c->scale);
  EXPECT_TRUE(c->causal);
  EXPECT_FALSE(c->has_sinks);
  EXPECT_EQ(Strides(a->k), Strides(c->k));
  EXPECT_EQ(Strides(a->out), Strides(c->out));
  EXPECT_EQ(c->k.storage, -1);
}

TEST(ResolveFlashAttn, ErrorsNameTheNode) {
  GraphBuilder b("g");
  Tensor q = b.Input("query", DType::kF32, {1, 2, 4, 8});
  Tensor k = b.Input("kcache", DType::kF16, {1, 4, 2, 8});
  Tensor v = b.Input("vcache", DType::kF16, {1, 4, 2, 8});
  b.Op1("flash_attn", {q, k, v}, {}, "attn0");
  ASSERT_TRUE(b.status().ok());
  Graph g = b.graph();
  const Node node = g.nodes.back();

  g.tensors[k.id].dims = {1, 4, 3, 8};  // Hq % Hkv != 0
  auto p = ResolveFlashAttn(g, node);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("node 'attn0' (flash_attn)"));
  EXPECT_THAT(p.status().message(), HasSubstr("input 'k' (tensor 'kcache' f16 [1,4,3,8])"));
  EXPECT_THAT(p.status().message(), HasSubstr("Hq % Hkv"));

  g.tensors[k.id].dims = {1, 4, 2, 8};
  g.tensors[v.id].dtype = DType::kI32;
  p = ResolveFlashAttn(g, node);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("'attn0'"));
  EXPECT_THAT(p.status().message(), HasSubstr("input 'v' (tensor 'vcache'"));

  g.tensors[v.id].dtype = DType::kF16;
  g.tensors[node.outputs[0]].dims = {1, 2, 4, 9};  // not what the op writes
  p = ResolveFlashAttn(g, node);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("'attn0'"));
  EXPECT_THAT(p.status().message(), HasSubstr("output 'out'"));

  Node bad = node;
  bad.inputs.resize(2);  // no v
  p = ResolveFlashAttn(g, bad);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("'attn0'"));

  Node alibi = node;
  alibi.attrs["max_bias"] = 8.0;  // needs a mask
  p = ResolveFlashAttn(b.graph(), alibi);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("'attn0'"));
  EXPECT_THAT(p.status().message(), HasSubstr("max_bias"));

  bad = node;
  bad.inputs[0] = 1000;  // no such tensor
  p = ResolveFlashAttn(g, bad);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("'attn0'"));
}

TEST(ResolveGatedDeltaNet, DefaultsAndHeads) {
  GraphBuilder b("g");
  Tensor q = b.Input("q", DType::kF16, {2, 5, 2, 64});
  Tensor k = b.Input("k", DType::kF16, {2, 5, 2, 64});
  Tensor v = b.Input("v", DType::kF32, {2, 5, 6, 32});
  Tensor g = b.Input("g", DType::kF32, {2, 5, 6});
  Tensor beta = b.Input("beta", DType::kF32, {2, 5, 6});
  b.Op("gated_delta_net", {q, k, v, g, beta}, {}, "gdn");
  ASSERT_TRUE(b.status().ok()) << b.status();
  auto p = ResolveGatedDeltaNet(b.graph(), LastNode(b));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->B, 2);
  EXPECT_EQ(p->T, 5);
  EXPECT_EQ(p->Hk, 2);
  EXPECT_EQ(p->Hv, 6);
  EXPECT_EQ(p->K, 64);
  EXPECT_EQ(p->V, 32);
  EXPECT_EQ(p->group, 3);
  EXPECT_FALSE(p->kda);
  EXPECT_FALSE(p->has_state);
  EXPECT_FALSE(p->state.present);
  EXPECT_FALSE(p->l2norm_qk);
  EXPECT_EQ(p->head_map, GdnHeadMap::kGrouped);
  EXPECT_DOUBLE_EQ(p->scale, 0.125);
  EXPECT_EQ(p->key_head(2), 0);
  EXPECT_EQ(p->key_head(3), 1);
  EXPECT_EQ(p->out.dtype, DType::kF32);
  EXPECT_THAT(Dims(p->out), ElementsAre(2, 5, 6, 32));
  EXPECT_EQ(p->final_state.dtype, DType::kF32);
  EXPECT_THAT(Dims(p->final_state), ElementsAre(2, 6, 64, 32));
  EXPECT_THAT(Strides(p->final_state), ElementsAre(6 * 64 * 32, 64 * 32, 32, 1));
}

TEST(ResolveGatedDeltaNet, KdaTiledStateAndViews) {
  GraphBuilder b("g");
  // q and k as views of one fused qk projection [1,3,2*4*32] (f32).
  Tensor qk = b.Input("qk", DType::kF32, {1, 3, 256});
  Tensor q = b.View(qk, {1, 3, 4, 32}, {3 * 1024, 1024, 128, 4}, 0, "q");
  Tensor k = b.View(qk, {1, 3, 4, 32}, {3 * 1024, 1024, 128, 4}, 512, "k");
  Tensor v = b.Input("v", DType::kBF16, {1, 3, 8, 16});
  Tensor g = b.Input("g", DType::kF32, {1, 3, 8, 32});
  Tensor beta = b.Input("beta", DType::kF32, {1, 3, 8});
  Tensor state = b.Input("state", DType::kF32, {1, 8, 32, 16});
  b.Op("gated_delta_net", {q, k, v, g, beta, state},
       {{"head_map", std::string("tiled")}, {"l2norm_qk", true}, {"scale", 0.25}});
  ASSERT_TRUE(b.status().ok()) << b.status();
  auto p = ResolveGatedDeltaNet(b.graph(), LastNode(b));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->kda);
  EXPECT_TRUE(p->has_state);
  EXPECT_TRUE(p->l2norm_qk);
  EXPECT_DOUBLE_EQ(p->scale, 0.25);
  EXPECT_EQ(p->head_map, GdnHeadMap::kTiled);
  EXPECT_EQ(p->key_head(5), 1);
  EXPECT_EQ(p->out.dtype, DType::kBF16);
  EXPECT_THAT(Strides(p->q), ElementsAre(768, 256, 32, 1));
  EXPECT_EQ(p->q.storage, qk.id);
  EXPECT_EQ(p->k.storage, qk.id);
  EXPECT_EQ(p->k.offset, 128);
  EXPECT_EQ(p->state.storage, state.id);
}

TEST(ResolveGatedDeltaNet, ErrorsNameTheNode) {
  GraphBuilder b("g");
  Tensor q = b.Input("q", DType::kF32, {1, 3, 2, 16});
  Tensor k = b.Input("k", DType::kF32, {1, 3, 2, 16});
  Tensor v = b.Input("v", DType::kF32, {1, 3, 4, 16});
  Tensor g = b.Input("gate", DType::kF32, {1, 3, 4});
  Tensor beta = b.Input("beta", DType::kF32, {1, 3, 4});
  b.Op("gated_delta_net", {q, k, v, g, beta}, {}, "gdn0");
  ASSERT_TRUE(b.status().ok());
  Graph graph = b.graph();
  const Node node = graph.nodes.back();

  graph.tensors[g.id].dims = {1, 3, 4, 8};  // neither GDA nor KDA
  auto p = ResolveGatedDeltaNet(graph, node);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("node 'gdn0' (gated_delta_net)"));
  EXPECT_THAT(p.status().message(), HasSubstr("input 'g' (tensor 'gate'"));

  graph.tensors[g.id].dims = {1, 3, 4};
  graph.tensors[v.id].dims = {1, 3, 3, 16};  // Hv % Hk != 0
  p = ResolveGatedDeltaNet(graph, node);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("'gdn0'"));
  EXPECT_THAT(p.status().message(), HasSubstr("Hv % Hk"));

  graph.tensors[v.id].dims = {1, 3, 4, 16};
  graph.tensors[node.outputs[1]].dtype = DType::kF16;  // final_state is f32
  p = ResolveGatedDeltaNet(graph, node);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("'gdn0'"));
  EXPECT_THAT(p.status().message(), HasSubstr("output 'final_state'"));
}

TEST(ResolveSmallOps, NormSoftmaxRope) {
  GraphBuilder b("g");
  Tensor x = b.Input("x", DType::kF16, {2, 3, 8});
  Tensor w = b.Input("w", DType::kF32, {8});
  b.Op1("rms_norm", {x, w}, {}, "norm");
  ASSERT_TRUE(b.status().ok()) << b.status();
  auto n = ResolveNorm(b.graph(), LastNode(b));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->kind, NormKind::kRms);
  EXPECT_EQ(n->rows, 6);
  EXPECT_EQ(n->C, 8);
  EXPECT_DOUBLE_EQ(n->eps, 1e-6);
  EXPECT_TRUE(n->has_weight);
  EXPECT_FALSE(n->has_bias);
  EXPECT_EQ(n->out.dtype, DType::kF16);
  b.Op1("layer_norm", {x});
  n = ResolveNorm(b.graph(), LastNode(b));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->kind, NormKind::kLayer);
  EXPECT_DOUBLE_EQ(n->eps, 1e-5);

  Tensor s = b.Input("s", DType::kF32, {2, 4, 3, 8});
  Tensor m = b.Input("m", DType::kF16, {4, 1, 8});
  b.Op1("softmax", {s, m}, {{"scale", 0.5}});
  ASSERT_TRUE(b.status().ok()) << b.status();
  auto sm = ResolveSoftmax(b.graph(), LastNode(b));
  ASSERT_TRUE(sm.ok()) << sm.status();
  EXPECT_EQ(sm->rows, 24);
  EXPECT_DOUBLE_EQ(sm->scale, 0.5);
  EXPECT_TRUE(sm->has_mask);
  EXPECT_FALSE(sm->mask_scalar);
  EXPECT_THAT(std::vector<int64_t>(sm->mask_strides.begin(), sm->mask_strides.end()),
              ElementsAre(0, 8, 0, 1));

  Tensor q = b.Input("q", DType::kBF16, {1, 5, 4, 64});
  Tensor pos = b.Input("pos", DType::kI32, {5});
  b.Op1("rope", {q, pos}, {{"theta", 1e6}});
  ASSERT_TRUE(b.status().ok()) << b.status();
  auto r = ResolveRope(b.graph(), LastNode(b));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->rotary_dim, 64);  // 0 = the whole head
  EXPECT_EQ(r->half, 32);
  EXPECT_DOUBLE_EQ(r->theta, 1e6);
  EXPECT_FALSE(r->interleaved);
  EXPECT_FALSE(r->positions_per_batch);
  EXPECT_DOUBLE_EQ(r->inv_freq(1), std::pow(1e6, -2.0 / 64));
  b.Op1("rope", {q, pos}, {{"rotary_dim", int64_t{32}}, {"mode", std::string("interleaved")}});
  r = ResolveRope(b.graph(), LastNode(b));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->rotary_dim, 32);
  EXPECT_TRUE(r->interleaved);
}

TEST(ResolveSmallOps, MatmulLinearConvWriteRows) {
  GraphBuilder b("g");
  Tensor a = b.Input("a", DType::kF32, {3, 1, 4, 8});
  Tensor bb = b.Input("b", DType::kF16, {5, 8, 6});
  b.Op1("matmul", {a, bb});
  ASSERT_TRUE(b.status().ok()) << b.status();
  auto mm = ResolveMatmul(b.graph(), LastNode(b));
  ASSERT_TRUE(mm.ok()) << mm.status();
  EXPECT_FALSE(mm->linear);
  EXPECT_EQ(mm->M, 4);
  EXPECT_EQ(mm->K, 8);
  EXPECT_EQ(mm->N, 6);
  EXPECT_EQ(mm->batch_rank, 2);
  EXPECT_EQ(mm->batch, 15);
  EXPECT_EQ(mm->batch_dims[0], 3);
  EXPECT_EQ(mm->batch_dims[1], 5);
  EXPECT_EQ(mm->a_batch_strides[0], 32);
  EXPECT_EQ(mm->a_batch_strides[1], 0);  // broadcast
  EXPECT_EQ(mm->b_batch_strides[0], 0);  // b has no such dim
  EXPECT_EQ(mm->b_batch_strides[1], 48);
  EXPECT_THAT(Dims(mm->out), ElementsAre(3, 5, 4, 6));

  Tensor x = b.Input("x", DType::kF32, {2, 3, 64});
  Tensor w = b.Input("w", DType::kQ8_0, {16, 64});
  Tensor bias = b.Input("bias", DType::kF32, {16});
  b.Op1("linear", {x, w, bias});
  ASSERT_TRUE(b.status().ok()) << b.status();
  mm = ResolveMatmul(b.graph(), LastNode(b));
  ASSERT_TRUE(mm.ok()) << mm.status();
  EXPECT_TRUE(mm->linear);
  EXPECT_EQ(mm->M, 6);
  EXPECT_EQ(mm->N, 16);
  EXPECT_EQ(mm->K, 64);
  EXPECT_TRUE(mm->has_bias);
  EXPECT_EQ(mm->weight_dtype, DType::kQ8_0);
  EXPECT_THAT(Strides(mm->b), ElementsAre(64, 1));

  Tensor cx = b.Input("cx", DType::kF32, {1, 7, 12});
  Tensor cw = b.Input("cw", DType::kF32, {12, 4});
  Tensor cs = b.Input("cs", DType::kF16, {1, 3, 12});
  b.Op("conv1d_causal", {cx, cw, cs}, {{"silu", true}});
  ASSERT_TRUE(b.status().ok()) << b.status();
  auto cv = ResolveConv1dCausal(b.graph(), LastNode(b));
  ASSERT_TRUE(cv.ok()) << cv.status();
  EXPECT_EQ(cv->K, 4);
  EXPECT_EQ(cv->T, 7);
  EXPECT_TRUE(cv->silu);
  EXPECT_TRUE(cv->has_state);
  EXPECT_EQ(cv->new_state.dtype, DType::kF16);

  Tensor cache = b.Input("cache", DType::kQ8_0, {1, 16, 64});
  Tensor src = b.Input("src", DType::kQ8_0, {1, 2, 64});
  Tensor rows = b.Input("rows", DType::kI32, {2});
  b.Op1("write_rows", {cache, src, rows});
  ASSERT_TRUE(b.status().ok()) << b.status();
  auto wr = ResolveWriteRows(b.graph(), LastNode(b));
  ASSERT_TRUE(wr.ok()) << wr.status();
  EXPECT_EQ(wr->lead, 1);
  EXPECT_EQ(wr->R, 16);
  EXPECT_EQ(wr->C, 64);
  EXPECT_EQ(wr->n, 2);
  EXPECT_FALSE(wr->convert);
  EXPECT_EQ(wr->row_bytes, 2 * kQ8BlockBytes);
}

TEST(ResolveSmallOps, GraphErrorsNameTheNode) {
  GraphBuilder b("g");
  Tensor x = b.Input("x", DType::kF32, {2, 8});
  Tensor w = b.Input("weights", DType::kF32, {8});
  b.Op1("rms_norm", {x, w}, {}, "norm7");
  ASSERT_TRUE(b.status().ok());
  Graph g = b.graph();
  g.tensors[w.id].dims = {9};
  auto n = ResolveNorm(g, g.nodes.back());
  ASSERT_FALSE(n.ok());
  EXPECT_THAT(n.status().message(), HasSubstr("node 'norm7' (rms_norm)"));
  EXPECT_THAT(n.status().message(), HasSubstr("'weights'"));
  g.tensors[w.id].dims = {8};
  g.tensors[g.nodes.back().outputs[0]].dtype = DType::kF16;
  n = ResolveNorm(g, g.nodes.back());
  ASSERT_FALSE(n.ok());
  EXPECT_THAT(n.status().message(), HasSubstr("'norm7'"));
  EXPECT_THAT(n.status().message(), HasSubstr("output 'out'"));
}

TEST(OpTolerance, FromTheSchema) {
  EXPECT_EQ(FindOp("flash_attn")->tolerance.f32, 1e-6);
  EXPECT_EQ(FindOp("gated_delta_net")->tolerance.low_precision, 5e-4);
  EXPECT_EQ(Tolerance("matmul", DType::kF32), 1e-6);
  EXPECT_EQ(Tolerance("linear", DType::kQ8_0), 5e-4);
  EXPECT_EQ(Tolerance("flash_attn", DType::kF16), 5e-4);
  EXPECT_EQ(Tolerance("add", DType::kF32), 1e-7);
  EXPECT_EQ(Tolerance("rms_norm", DType::kBF16), 1e-5);
  EXPECT_EQ(Tolerance("gather", DType::kI32), 1e-7);
  EXPECT_EQ(Tolerance("no_such_op", DType::kF16), 1e-5);
}

}  // namespace
}  // namespace kiln
