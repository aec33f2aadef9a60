#!/usr/bin/env python3
"""Embedding kiln from Python: what embed.cc does, with NumPy arrays.

Loads the hybrid example as one model of two entries (prefill and decode over
the same weights and states), prefills a prompt, then decodes token after
token with the states kept on the device; prints tokens/s for each phase and
the same checksum as embed.cc and embed.c.

    embed.py out/prefill.kgraph out/decode.kgraph [--steps N] [--backend cpu]
"""

import argparse
import sys
import time

import numpy as np

import kiln


def prompt(tokens, hidden):
    """Token t's activations: the same formula as embed.cc's, in float32."""
    t = np.arange(tokens, dtype=np.float32)[:, None]
    c = np.arange(hidden, dtype=np.float32)[None, :]
    x = np.float32(0.5) * np.sin(np.float32(0.37) * t + np.float32(0.011) * c)
    return x.astype(np.float32)[None]


def find(descs, name):
    return next((d for d in descs if d.name == name), None)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("prefill")
    p.add_argument("decode")
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--backend", default="cpu", help="backends in priority order, comma-separated")
    args = p.parse_args()

    try:
        backends = [kiln.Backend(name) for name in args.backend.split(",")]
        model = kiln.Model.load(args.prefill)  # its own graph is entry "prefill"
        if "decode" not in model.entries:
            model.add_entry_file("decode", args.decode)
        model.prepare(backends)
        prefill, decode = model.entry("prefill"), model.entry("decode")

        x_desc = find(prefill.inputs, "x")
        _, tokens, hidden = x_desc.shape
        model.zero_states()
        prefill.set_input("x", prompt(tokens, hidden))
        t0 = time.perf_counter()
        prefill.run()
        prefill_s = time.perf_counter() - t0
        x = prefill.get_output("y")[:, -1:, :]  # the last row starts decode

        pos_name = decode.metadata.get("decode.position", "pos")
        mask_name = decode.metadata.get("decode.mask", "mask")
        mask_desc = find(decode.inputs, mask_name)
        cells = mask_desc.shape[-1]
        if tokens + args.steps > cells:
            sys.exit("embed.py: prefill tokens + steps exceed the cache")
        mask = np.full(mask_desc.shape, -np.inf, np.float32)
        mask[..., :tokens] = 0
        t0 = time.perf_counter()
        for step in range(args.steps):
            pos = tokens + step
            mask[..., pos] = 0
            decode.set_inputs({"x": x, pos_name: np.array([pos], np.int32), mask_name: mask})
            decode.run()
            x = decode.get_output("y")
        decode_s = time.perf_counter() - t0
    except kiln.Error as e:
        sys.exit(f"embed.py: {e}")

    checksum = float(np.sum(x, dtype=np.float64))
    print(f"backends  {args.backend}")
    print(f"prefill   {tokens} tokens in {prefill_s * 1e3:.3f} ms = {tokens / prefill_s:.1f} tokens/s")
    rate = args.steps / decode_s if args.steps else 0.0
    print(f"decode    {args.steps} tokens in {decode_s * 1e3:.3f} ms = {rate:.1f} tokens/s")
    print(f"checksum  {checksum:.6e}")
    return 0 if np.isfinite(checksum) else 1


if __name__ == "__main__":
    sys.exit(main())
