#!/bin/bash
# Fourth device call (third session): floors with the event and throughput
# figures; the shuffle FA decode vs the barrier one (KILN_OPENCL_FA_SHFL=0),
# split lengths, NK=8, GEMV rows, GDN columns; the conformance quick grid.
cd "$(dirname "$0")/../.."
R=$OUT/run4.log; exec > >(tee -a $R) 2>&1
export KILN_CACHE_DIR=/tmp/kc CUDA_CACHE_DISABLE=1
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader
F="kiln_opencl_floors --iters 20"
echo "== floors (default)"; $F
echo "== FA_SHFL=0"; KILN_OPENCL_FA_SHFL=0 $F --only fa_decode
for sp in 256 512 1024; do echo "== FA_SPLIT=$sp"; KILN_OPENCL_FA_SPLIT=$sp $F --only fa_decode; done
echo "== FA_NK=8"; KILN_OPENCL_FA_NK=8 $F --only fa_decode
echo "== FA_NK=8 FA_SPLIT=512"; KILN_OPENCL_FA_NK=8 KILN_OPENCL_FA_SPLIT=512 $F --only fa_decode
echo "== FA_SHFL=0 seq"; KILN_OPENCL_FA_SHFL=0 $F --only seq
echo "== GEMV_ROWS=8"; KILN_OPENCL_GEMV_ROWS=8 $F --only linear
echo "== GDN_VC=32"; KILN_OPENCL_GDN_VC=32 $F --only gdn
echo "== GDN_VC=8"; KILN_OPENCL_GDN_VC=8 $F --only gdn
echo "== conformance"; (time kiln conformance --backend opencl --json $OUT/conformance4.json) 2>&1 | grep -E "^total|real|FAIL|fail" | tail -12
python3 -c "import json,collections;d=json.load(open('$OUT/conformance4.json'));print(collections.Counter(c['result'] for c in d['cases']))"
echo "== summary"; grep -E "^==|event" $R | grep -v "^== summary" | cut -c1-220
