#!/bin/bash
# On the GPU machine, after `source .gpu/env.sh`. Everything of one device
# call: floors (with tuning variants), conformance, examples, mixed backends.
cd "$(dirname "$0")/../.."   # repo root
R=$OUT/all.log; exec > >(tee -a $R) 2>&1
export KILN_CACHE_DIR=/tmp/kc CUDA_CACHE_DISABLE=1
kiln info 2>&1 | grep -A3 "backend opencl" | head -4
echo "== floors (default)"; kiln_opencl_floors --iters 30
for v in ${FA_SPLITS:-128 512}; do echo "== floors KILN_OPENCL_FA_SPLIT=$v"; KILN_OPENCL_FA_SPLIT=$v kiln_opencl_floors --iters 30 | grep -E "fa_decode|seq"; done
for v in ${GEMV_ROWS:-2 8}; do echo "== floors KILN_OPENCL_GEMV_ROWS=$v"; KILN_OPENCL_GEMV_ROWS=$v kiln_opencl_floors --iters 30 | grep -E "copy|linear"; done
echo "== conformance"; (time kiln conformance --backend opencl --json $OUT/conformance.json) 2>&1 | tail -12
export EXDIR=/tmp/ex KILN=kiln PY=python3 CMP=.gpu/data/compare_outputs.py WARMUP=1 ITERS=5 STEPS=16
bash .gpu/data/examples.sh
echo "== mixed: --backend vulkan,opencl,cpu (both GPU backends in one process)"
for ex in attention-block-decode hybrid-block-decode hybrid-block-prefill; do
  echo "-- $ex"
  kiln run /tmp/ex/$ex.kgraph --backend vulkan,opencl,cpu --warmup 1 --iters 5 --output-dir /tmp/ex/$ex-mix 2>&1 | grep -vE "^\s+[a-z_]+ +[0-9]" | head -20
  python3 .gpu/data/compare_outputs.py /tmp/ex/$ex-mix /tmp/ex/$ex-cpu
done
echo "-- opencl first: --backend opencl,vulkan,cpu"
kiln run /tmp/ex/hybrid-block-decode.kgraph --backend opencl,vulkan,cpu --warmup 1 --iters 5 --output-dir /tmp/ex/hyb-mix2 2>&1 | head -12
python3 .gpu/data/compare_outputs.py /tmp/ex/hyb-mix2 /tmp/ex/hybrid-block-decode-cpu
