// Values `kiln run` binds to a graph's inputs: read from a .npy file, random
// (seeded) or zeros.
//
// Random values honor the graph metadata "input_range.<input name>" =
// "lo,hi" (inclusive): uniform integers for i32, uniform reals for floats.
// Without a range, floats are N(0, 1) * 0.5 (the scale of activations and
// weights after normalization) and i32 values are uniform in [0, 15].
//
// A .npy file's shape must be the input's; its values convert where nothing
// but rounding is lost, and each conversion is reported (InputPlan::note):
// floats (f64, f32, f16) to any float dtype, int64 to i32 (every value must
// fit), and f32/f16/f64 to q8_0 (quantized per block of 32). A q8_0 input
// also takes its packed blocks as they are: a uint8 array whose innermost dim
// is the row's bytes (34 per block of 32). The header is checked before any
// data is read, and the data is read straight into the input's tensor.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "graph/graph.h"
#include "scheduler/host_tensor.h"

namespace kiln::tools {

// The most bytes of inputs `kiln run` makes up (random or zeros) unless told
// otherwise (--max-generated-bytes): a graph file of a few bytes may declare
// inputs of terabytes.
inline constexpr int64_t kDefaultMaxGeneratedBytes = int64_t{4} << 30;

struct InputRange {
  double lo = 0;
  double hi = 0;
};

// The range the graph's metadata gives for `input_name`, if any; an entry
// that does not parse as "lo,hi" with lo <= hi is an error.
absl::StatusOr<std::optional<InputRange>> InputRangeFor(const Graph& graph,
                                                        absl::string_view input_name);

// Random values for tensor `t` (q8_0 is quantized from random floats).
HostTensor RandomInput(const TensorInfo& t, const std::optional<InputRange>& range, uint64_t seed);
// The same, written into `out` (t's dtype and shape) with no other copy.
void FillRandom(const TensorInfo& t, const std::optional<InputRange>& range, uint64_t seed, HostTensor& out);

// Where one input's value comes from, checked (file header, dtype, range
// metadata) but not yet read or made.
struct InputPlan {
  int tensor = -1;
  std::string source;     // "random", "zeros" or a .npy path
  bool given = false;     // named by the user (else random by default)
  std::string note;       // a conversion made while reading the file, else empty
};

struct InputOptions {
  uint64_t seed = 0;
  int64_t max_generated_bytes = kDefaultMaxGeneratedBytes;
};

// One plan per graph input, in graph.inputs order: `given` holds the
// user's (tensor id, source) pairs; the other inputs are random. Opens every
// file (reading only its header) and checks the total bytes to generate
// against options.max_generated_bytes, so errors come before any big work.
absl::StatusOr<std::vector<InputPlan>> PlanInputs(const Graph& graph,
                                                  const std::vector<std::pair<int, std::string>>& given,
                                                  const InputOptions& options);

// The value of one planned input: read (straight into the tensor, converted
// as planned), random or zeros. Host memory that runs out is an error naming
// the input and its size.
absl::StatusOr<HostTensor> MakeInputValue(const Graph& graph, const InputPlan& plan, const InputOptions& options);

// The lines `kiln run` prints about its inputs: one naming the inputs filled
// at random because none was given, one per conversion; empty when neither.
std::vector<std::string> InputNotes(const Graph& graph, const std::vector<InputPlan>& plans);

}  // namespace kiln::tools
