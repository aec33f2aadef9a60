// Hashes that are the same in every process, build and machine (absl::Hash
// is seeded per process, so it cannot name files or stamp sources). Not
// cryptographic: use them where a collision costs a cache miss, not safety.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace kiln {

// MurmurHash64A (Austin Appleby, public domain): fast, well mixed.
uint64_t StableHash64(absl::string_view data, uint64_t seed = 0);

// 64-bit FNV-1a: a second, unrelated function, for 128-bit names.
uint64_t Fnv1a64(absl::string_view data);

// 32 hex digits of StableHash64 and Fnv1a64 together: a file name for `data`.
std::string StableHashHex128(absl::string_view data);

}  // namespace kiln
