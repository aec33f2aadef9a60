#!/usr/bin/python3
"""Prints dtype, shape, mean and std of each .npy file in a folder.

With --expect NAME,NAME,... it also checks that exactly those outputs are
there; with --check, that every value is finite. Exits 1 on any failure.
"""
import argparse
import pathlib
import sys

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("folder", type=pathlib.Path)
    ap.add_argument("--expect", help="comma-separated output names that must all be there")
    ap.add_argument("--check", action="store_true", help="fail on NaN or inf")
    args = ap.parse_args()

    files = sorted(args.folder.glob("*.npy"))
    failures = []
    if not files:
        failures.append(f"no .npy files in {args.folder}")
    names = {f.name[: -len(".npy")] for f in files}
    if args.expect:
        want = set(args.expect.split(","))
        for missing in sorted(want - names):
            failures.append(f"output '{missing}' was not written")
        for extra in sorted(names - want):
            failures.append(f"unexpected output '{extra}'")

    width = max((len(n) for n in names), default=0)
    for f in files:
        name = f.name[: -len(".npy")]
        try:
            a = np.load(f, allow_pickle=False)
        except Exception as e:  # any unreadable file is a failure to report
            failures.append(f"{f}: numpy cannot read it: {e}")
            continue
        x = a.astype(np.float64)
        finite = bool(np.isfinite(x).all())
        stats = f"mean {x.mean():+.4e}  std {x.std():.4e}" if x.size else "empty"
        note = "" if finite else "  NON-FINITE VALUES"
        print(f"  {name:<{width}}  {str(a.dtype):<7} {str(list(a.shape)):<20} {stats}{note}")
        if args.check and not finite:
            failures.append(f"{f}: holds NaN or inf")

    for msg in failures:
        print(f"error: {msg}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
