#!/usr/bin/python3
"""Compares the .npy outputs of two `kiln run --output-dir` folders.

For each file in A (and B): NMSE = sum (a-b)^2 / sum b^2 with B as the
reference, and the positions of NaN/inf must agree. Exits 1 when a file is
missing or over --tol (default 1e-4: graphs chain f16 ops, so this is looser
than any one op's conformance tolerance).
"""
import argparse
import pathlib
import sys

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("a", type=pathlib.Path)
    ap.add_argument("b", type=pathlib.Path, help="the reference (e.g. the CPU backend's outputs)")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    failed = 0
    names = sorted({f.name for f in args.a.glob("*.npy")} | {f.name for f in args.b.glob("*.npy")})
    if not names:
        print(f"no .npy files in {args.a} or {args.b}")
        return 1
    for name in names:
        fa, fb = args.a / name, args.b / name
        if not fa.exists() or not fb.exists():
            print(f"{name}: only in {'b' if fa.exists() is False else 'a'}")
            failed += 1
            continue
        a = np.load(fa).astype(np.float64)
        b = np.load(fb).astype(np.float64)
        if a.shape != b.shape:
            print(f"{name}: shape {a.shape} vs {b.shape}")
            failed += 1
            continue
        bad = ~np.isfinite(a) != ~np.isfinite(b)
        fin = np.isfinite(a) & np.isfinite(b)
        den = float(np.sum(b[fin] ** 2))
        nmse = float(np.sum((a[fin] - b[fin]) ** 2)) / den if den > 0 else float(np.sum((a[fin] - b[fin]) ** 2))
        ok = not bad.any() and nmse <= args.tol
        failed += not ok
        print(f"{name}: nmse {nmse:.3g}{'' if not bad.any() else f', {int(bad.sum())} inf/NaN mismatches'}"
              f" {'ok' if ok else 'FAIL'}")
    print(f"{len(names) - failed} of {len(names)} outputs match")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
