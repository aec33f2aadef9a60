"""The kiln Python module over the public API: backends, building and loading
models, inputs and outputs as NumPy arrays (dtype and shape checked), states,
plan, profile, statistics, and errors as exceptions."""

import json
import threading

import numpy as np
import pytest

import kiln


@pytest.fixture(scope="module")
def cpu():
    return kiln.Backend("cpu", threads=2)


def add_model(cpu, shape=(2, 3)):
    """y = x + w (w a constant), prepared on the CPU."""
    b = kiln.GraphBuilder("add")
    x = b.input("x", "f32", list(shape))
    w = b.constant("w", "f32", np.arange(np.prod(shape), dtype=np.float32).reshape(shape))
    y = b.op1("add", [x, w], name="sum")
    b.rename(y, "y")
    b.output(y)
    model = kiln.Model.from_builder(b)
    model.prepare(cpu)
    return model


def accumulator(cpu):
    """A model with a state: s <- s + x, y = s + x."""
    b = kiln.GraphBuilder("acc")
    s = b.input("s", "f32", [4])
    x = b.input("x", "f32", [4])
    nxt = b.op1("add", [s, x])
    b.rename(nxt, "s.next")
    b.output(nxt)
    b.state(s, nxt)
    model = kiln.Model.from_builder(b)
    model.prepare([cpu])
    return model


def test_version_backends_devices(cpu):
    assert kiln.version() == kiln.__version__
    assert kiln.version().count(".") == 2
    assert "cpu" in kiln.backend_names()
    devices = kiln.list_devices("cpu")
    assert devices and devices[0].backend == "cpu"
    assert cpu.name == "cpu" and cpu.device.kind == "cpu"
    with pytest.raises(kiln.NotFoundError, match="cpu"):  # the message lists the backends compiled in
        kiln.Backend("no-such-backend")
    with pytest.raises(LookupError):
        kiln.list_devices("no-such-backend")


def test_run_returns_arrays(cpu):
    model = add_model(cpu)
    e = model.entry()
    assert e.name == "prefill" and model.entries == ["prefill"]
    assert [(d.name, d.dtype, d.shape) for d in e.inputs] == [("x", "f32", (2, 3))]
    assert e.outputs[0].name == "y" and e.outputs[0].numpy_dtype == np.float32
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    e.set_input("x", x)
    e.run()
    y = e.get_output("y")
    assert y.dtype == np.float32 and y.shape == (2, 3)
    np.testing.assert_array_equal(y, x + np.arange(6, dtype=np.float32).reshape(2, 3))
    assert e.runs == 1
    assert list(e.get_outputs()) == ["y"]
    out = np.empty((2, 3), np.float32)
    assert e.get_output("y", out=out) is out
    np.testing.assert_array_equal(out, y)
    with pytest.raises(kiln.InvalidArgumentError, match="writeable C-contiguous"):
        e.get_output("y", out=np.empty((3, 2), np.float32).T)
    with pytest.raises(kiln.InvalidArgumentError, match="float64"):
        e.get_output("y", out=np.empty((2, 3)))
    with pytest.raises(kiln.NotFoundError, match="outputs: y"):
        e.get_output("z", out=out)
    # The input was copied: changing x now does not change the next run.
    x[:] = 100
    e.run()
    np.testing.assert_array_equal(e.get_output("y"), y)
    # A non-contiguous array of the right dtype and shape is accepted.
    e.set_input("x", np.ones((3, 2), np.float32).T)
    e.submit()
    e.wait()
    np.testing.assert_array_equal(e.get_output("y"), 1 + np.arange(6, dtype=np.float32).reshape(2, 3))
    # Lists convert when no kind changes.
    e.set_input("x", [[0.0, 0, 0], [0, 0, 0]])


def test_zero_copy_buffers(cpu):
    e = add_model(cpu).entry()
    xbuf = e.input_buffer("x")
    assert xbuf.dtype == np.float32 and xbuf.shape == (2, 3) and xbuf.flags.writeable
    xbuf[...] = 2
    e.run()  # x counts as set
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(e.get_output("y"), 2 + w)
    ybuf = e.output_buffer("y")
    assert not ybuf.flags.writeable
    np.testing.assert_array_equal(ybuf, 2 + w)
    xbuf[0, 0] = 10  # the next run reads the buffer as it is now
    e.run()
    assert e.get_output("y")[0, 0] == 10
    with pytest.raises(kiln.NotFoundError, match="inputs: x"):
        e.input_buffer("y")


def test_inputs_are_checked(cpu):
    e = add_model(cpu).entry()
    with pytest.raises(kiln.InvalidArgumentError, match=r"input 'x'.*f32 \[2,3\].*float64") as err:
        e.set_input("x", np.zeros((2, 3)))
    assert isinstance(err.value, ValueError) and err.value.code == "INVALID_ARGUMENT"
    with pytest.raises(kiln.InvalidArgumentError, match=r"input 'x'.*got shape \[3,2\]"):
        e.set_input("x", np.zeros((3, 2), np.float32))
    with pytest.raises(kiln.NotFoundError, match=r"no input 'z'.*inputs: x"):
        e.set_input("z", np.zeros((2, 3), np.float32))
    with pytest.raises(kiln.InvalidArgumentError):
        e.set_input("x", [["a", "b", "c"], ["d", "e", "f"]])  # strings are no f32
    with pytest.raises(kiln.FailedPreconditionError, match="x"):
        e.run()  # x was never set
    with pytest.raises(kiln.FailedPreconditionError):
        e.get_output("y")  # no run yet


def test_builder_errors(cpu):
    b = kiln.GraphBuilder("bad")
    x = b.input("x", "f32", [2, 3])
    w = b.input("w", "f32", [4])
    assert not b.op1("add", [x, w], name="mismatch").valid
    with pytest.raises(kiln.InvalidArgumentError, match="mismatch"):
        b.status()
    with pytest.raises(kiln.InvalidArgumentError, match="mismatch"):
        kiln.Model.from_builder(b)
    with pytest.raises(kiln.FailedPreconditionError, match="used up"):
        b.input("y", "f32", [1])
    with pytest.raises(kiln.InvalidArgumentError, match="f64"):
        kiln.GraphBuilder("g").input("x", "f64", [1])


def test_states(cpu):
    model = accumulator(cpu)
    e = model.entry()
    assert [d.name for d in model.states] == ["s"]
    np.testing.assert_array_equal(model.read_state("s"), np.zeros(4, np.float32))  # states start as zeros
    x = np.array([1, 2, 3, 4], np.float32)
    e.set_input("x", x)
    e.run()
    e.run()
    np.testing.assert_array_equal(model.read_state("s"), 2 * x)
    out = np.empty(4, np.float32)
    assert model.read_state("s", out=out) is out
    np.testing.assert_array_equal(out, 2 * x)
    model.write_state("s", np.full(4, 10, np.float32))
    e.run()
    np.testing.assert_array_equal(e.get_output("s.next"), 10 + x)
    model.zero_state("s")
    np.testing.assert_array_equal(model.read_state("s"), np.zeros(4, np.float32))
    model.write_state("s", np.ones(4, np.float32))
    model.zero_states()
    np.testing.assert_array_equal(model.read_state("s"), np.zeros(4, np.float32))
    with pytest.raises(kiln.InvalidArgumentError, match="state 's'"):
        model.write_state("s", np.zeros(5, np.float32))
    with pytest.raises(kiln.NotFoundError, match="states: .?s"):
        model.read_state("t")


def test_plan_profile_stats(cpu):
    model = add_model(cpu)
    e = model.entry()
    plan = e.plan()
    assert plan.backends == ["cpu"]
    assert [(n.name, n.op, n.backend) for n in plan.nodes] == [("sum", "add", "cpu")]
    assert plan.transfer_bytes_per_run == 0
    assert "sum" in plan.to_text()
    assert json.loads(plan.to_json())["nodes"][0]["backend"] == "cpu"
    e.set_profiling(True)
    e.set_input("x", np.zeros((2, 3), np.float32))
    e.run()
    e.run()
    profile = e.profile()
    assert profile.runs == 2
    assert [(n.name, n.count) for n in profile.nodes] == [("sum", 2)]
    assert profile.ops[0].op == "add"
    json.loads(profile.to_json())
    e.reset_profile()
    e.set_tracing(True)
    e.run()
    assert "traceEvents" in json.loads(e.trace_json())
    stats = model.prepare_stats()
    assert stats.prepare_ms >= 0 and [b.backend for b in stats.backends] == ["cpu"]
    assert isinstance(cpu.pipeline_stats(), kiln.PipelineStats)


def test_model_errors(cpu, tmp_path):
    bad = tmp_path / "bad.kgraph"
    bad.write_bytes(b"not a graph")
    with pytest.raises(kiln.Error, match="bad.kgraph"):
        kiln.Model.load(str(bad))
    with pytest.raises(kiln.Error, match="missing.kgraph"):
        kiln.Model.load(str(tmp_path / "missing.kgraph"))
    model = add_model(cpu)
    with pytest.raises(kiln.FailedPreconditionError):
        model.prepare(cpu)  # once per model
    with pytest.raises(kiln.NotFoundError, match="prefill"):
        model.entry("decode")


def test_entry_outlives_python_model(cpu):
    e = add_model(cpu).entry()  # the Model object is not kept by the test
    e.set_input("x", np.zeros((2, 3), np.float32))
    e.run()
    assert e.get_output("y").shape == (2, 3)


def test_threads_run_models_at_once(cpu):
    models = [add_model(cpu) for _ in range(4)]
    errors = []

    def work(i):
        try:
            e = models[i].entry()
            x = np.full((2, 3), i, np.float32)
            for _ in range(20):
                e.set_input("x", x)
                e.run()
                np.testing.assert_array_equal(e.get_output("y"), x + np.arange(6, dtype=np.float32).reshape(2, 3))
        except Exception as ex:  # reported below, with its thread
            errors.append((i, ex))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_hybrid_prefill_then_decode_share_states(cpu, hybrid):
    """Decoding tokens 0..3 one at a time gives what prefilling them gives,
    and decode continues from the states prefill left on the device."""
    model = kiln.Model.load(hybrid["prefill"])
    if "decode" not in model.entries:
        model.add_entry_file("decode", hybrid["decode"])
    model.prepare([cpu])
    prefill, decode = model.entry("prefill"), model["decode"]
    assert {d.name for d in model.states} >= {"blk.0.ssm_state", "blk.1.k_cache"}
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((1, 4, 1024)) * 0.5).astype(np.float32)

    prefill.set_input("x", x)
    prefill.run()
    y_prefill = prefill.get_output("y")
    k_after_prefill = model.read_state("blk.1.k_cache")
    assert np.any(k_after_prefill[0, :4] != 0) and not np.any(k_after_prefill[0, 4:])

    model.zero_states()
    mask_desc = next(d for d in decode.inputs if d.name == "mask")
    mask = np.full(mask_desc.shape, -np.inf, np.float32)
    for t in range(4):
        mask[..., t] = 0
        decode.set_inputs({"x": x[:, t:t + 1], "pos": np.array([t], np.int32), "mask": mask})
        decode.run()
        np.testing.assert_allclose(decode.get_output("y")[0, 0], y_prefill[0, t], rtol=2e-2, atol=2e-2)
    # The caches written token by token hold what prefill wrote (f16).
    np.testing.assert_allclose(model.read_state("blk.1.k_cache").astype(np.float32),
                               k_after_prefill.astype(np.float32), rtol=1e-2, atol=1e-2)
