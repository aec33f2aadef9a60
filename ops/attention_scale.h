// The `scale` attribute shared by flash_attn and gated_delta_net: 0 (the
// default) means 1/sqrt(head_dim).
#pragma once

#include <cmath>
#include <cstdint>

#include "graph/node.h"

namespace kiln {

// The scale a node of flash_attn (head_dim = Dk) or gated_delta_net
// (head_dim = K) applies. Validation already rejected negative values.
inline double EffectiveScale(const Node& node, int64_t head_dim) {
  const double s = node.GetFloat("scale");
  return s != 0.0 ? s : 1.0 / std::sqrt(static_cast<double>(head_dim));
}

}  // namespace kiln
