"""kiln: a graph-executor runtime with CPU, Vulkan and OpenCL backends.

    import numpy as np
    import kiln

    cpu = kiln.Backend("cpu")
    model = kiln.Model.load("out/hybrid-block-prefill.kgraph")
    model.add_entry_file("decode", "out/hybrid-block-decode.kgraph")
    model.prepare([cpu])                      # placement, memory, pipelines
    prefill = model.entry("prefill")
    prefill.set_input("x", np.zeros((1, 512, 1024), np.float32))
    prefill.run()                             # states update on the device
    y = prefill.get_output("y")               # a numpy array

Arrays: f32, f16 and i32 tensors are float32, float16 and int32 arrays of the
tensor's shape; bf16 tensors are uint16 arrays (the raw bits), q8_0 tensors
uint8 arrays of the packed blocks (innermost dim d becomes d / 32 * 34).
Inputs must have exactly that dtype and shape (kiln.InvalidArgumentError
otherwise); a C-contiguous array is read in place, outputs are arrays over
kiln's result without a further copy, or written into an array you pass
(get_output(name, out=a), read_state(name, out=a)). Entry.input_buffer and
output_buffer are arrays over kiln's own buffers where the backend keeps them
in host memory (the CPU): no copy at all.

Errors: a failed call raises kiln.Error (or a subclass for its status code:
InvalidArgumentError is also a ValueError, NotFoundError a LookupError, ...)
whose message names what was at fault. Calls that wait for devices release
the GIL. docs/getting-started.md has more; include/kiln/kiln.h is the
reference for every call.
"""

from ._errors import (
    AlreadyExistsError,
    Error,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
    ResourceExhaustedError,
    UnavailableError,
    UnimplementedError,
)
from ._kiln import (
    Backend,
    DeviceInfo,
    Entry,
    GraphBuilder,
    Model,
    PipelineStats,
    Plan,
    PrepareStats,
    Profile,
    Tensor,
    TensorDesc,
    backend_names,
    default_cache_dir,
    list_devices,
    version,
)

__version__ = version()
