#!/bin/bash
# Second device call: floors with PTX conversions (default on NVIDIA) and
# without, tuning variants, conformance, the examples against the CPU.
cd "$(dirname "$0")/../.."
R=$OUT/all2.log; exec > >(tee -a $R) 2>&1
export KILN_CACHE_DIR=/tmp/kc CUDA_CACHE_DISABLE=1
echo "== floors (default: PTX)"; kiln_opencl_floors --iters 30
echo "== floors KILN_OPENCL_PTX=0"; KILN_OPENCL_PTX=0 kiln_opencl_floors --iters 30 | grep -E "copy|fa_decode|linear 1x4096 x (f16|bf16)|seq1 over a shared cache of 4096"
for v in 8 32; do echo "== KILN_OPENCL_GDN_VC=$v"; KILN_OPENCL_GDN_VC=$v kiln_opencl_floors --iters 30 | grep -E "gdn"; done
echo "== KILN_OPENCL_GEMV_ROWS=8"; KILN_OPENCL_GEMV_ROWS=8 kiln_opencl_floors --iters 30 | grep -E "copy|linear"
echo "== KILN_OPENCL_FA_SPLIT=128"; KILN_OPENCL_FA_SPLIT=128 kiln_opencl_floors --iters 30 | grep -E "fa_decode|seq"
echo "== conformance"; (time kiln conformance --backend opencl --json $OUT/conformance2.json) 2>&1 | tail -6
grep -c '"failed"' $OUT/conformance2.json
export EXDIR=/tmp/ex KILN=kiln PY=python3 CMP=.gpu/data/compare_outputs.py WARMUP=1 ITERS=5 STEPS=16
bash .gpu/data/examples.sh
