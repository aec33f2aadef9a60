#!/bin/bash
# Third device call: floors after the masked-tile skip for the whole block
# and the one-mask-row reads; NK=8 variant; conformance; examples.
cd "$(dirname "$0")/../.."
R=$OUT/all3.log; exec > >(tee -a $R) 2>&1
export KILN_CACHE_DIR=/tmp/kc CUDA_CACHE_DISABLE=1
echo "== floors (default)"; kiln_opencl_floors --iters 30
echo "== floors KILN_OPENCL_FA_NK=8"; KILN_OPENCL_FA_NK=8 kiln_opencl_floors --iters 30 | grep -E "copy|fa_decode|seq"
echo "== conformance"; (time kiln conformance --backend opencl --json $OUT/conformance3.json) 2>&1 | grep -E "^total|real"
python3 -c "import json,collections;d=json.load(open('$OUT/conformance3.json'));print(collections.Counter(c['result'] for c in d['cases']))"
export EXDIR=/tmp/ex KILN=kiln PY=python3 CMP=.gpu/data/compare_outputs.py WARMUP=1 ITERS=5 STEPS=16
bash .gpu/data/examples.sh 2>&1 | grep -E "==|time|match|decode|prefill"
