// Each op family file adds its schemas here; registry.cc calls them all.
#pragma once

#include <vector>

#include "ops/op_schema.h"

namespace kiln {

void RegisterElementwiseOps(std::vector<OpSchema>& ops);  // ops/elementwise.cc
void RegisterMatmulOps(std::vector<OpSchema>& ops);       // ops/matmul.cc
void RegisterSoftmaxOps(std::vector<OpSchema>& ops);      // ops/softmax.cc
void RegisterNormOps(std::vector<OpSchema>& ops);         // ops/norm.cc
void RegisterRopeOps(std::vector<OpSchema>& ops);         // ops/rope.cc
void RegisterLayoutOps(std::vector<OpSchema>& ops);       // ops/layout.cc: gather,
                                                          // concat, slice, reshape,
                                                          // permute, transpose, contiguous
void RegisterReduceOps(std::vector<OpSchema>& ops);       // ops/reduce.cc
void RegisterConvOps(std::vector<OpSchema>& ops);         // ops/conv1d_causal.cc
void RegisterWriteRowsOps(std::vector<OpSchema>& ops);    // ops/write_rows.cc
void RegisterFlashAttnOps(std::vector<OpSchema>& ops);    // ops/flash_attn.cc
void RegisterGatedDeltaNetOps(std::vector<OpSchema>& ops);// ops/gated_delta_net.cc

}  // namespace kiln
