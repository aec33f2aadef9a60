#!/bin/bash
# Fourth session, call 1: main's build (.gpu/data/base/, the "before") and
# this build's floors in one call; the new FA decode's variants (fused merge,
# pipelining, keys per work-item, split length, cache hints), GEMV and GDN
# knobs; registers and spills of the programs (ptxas -v on the cached PTX);
# the SM clock sampled through the call; the conformance quick grid.
cd "$(dirname "$0")/../.."
D=.gpu/data
R=$OUT/run5.log; exec > >(tee -a $R) 2>&1
export KILN_CACHE_DIR=/tmp/kc CUDA_CACHE_DISABLE=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,utilization.gpu --format=csv,noheader -lms 250 > $OUT/clocks.csv &
SMI=$!
T="timeout 60"
F="kiln_opencl_floors --iters 20"
echo "== base floors --iters 30"; $T $D/base/kiln_opencl_floors --iters 30
echo "== new floors --iters 30"; $T kiln_opencl_floors --iters 30
v() { echo "== $*"; env "${@:1:$#-1}" $T $F --only "${@: -1}"; }
v KILN_OPENCL_FA_FUSE=0 fa_decode
v KILN_OPENCL_FA_PIPE=0 fa_decode
v KILN_OPENCL_FA_NK=2 fa_decode
v KILN_OPENCL_FA_NK=8 fa_decode
v KILN_OPENCL_FA_PER_CU=2 fa_decode
v KILN_OPENCL_FA_PER_CU=8 fa_decode
v KILN_OPENCL_FA_PER_CU=16 fa_decode
v KILN_OPENCL_FA_MAXT=32 KILN_OPENCL_FA_PER_CU=1 fa_decode
v KILN_OPENCL_FA_SPLIT=128 fa_decode
v KILN_OPENCL_FA_NK=2 KILN_OPENCL_FA_PER_CU=8 fa_decode
v KILN_OPENCL_NC=1 fa_decode
v KILN_OPENCL_NC=2 fa_decode
v KILN_OPENCL_NC=3 fa_decode
v KILN_OPENCL_FA_FUSE=0 seq
v KILN_OPENCL_FA_PER_CU=8 seq
v KILN_OPENCL_FA_NK=2 seq
v KILN_OPENCL_FA_PER_CU=16 seq
v KILN_OPENCL_FA_XPOSE=0 fa_decode
v KILN_OPENCL_FA_XPOSE=0 seq
v KILN_OPENCL_QUEUES=2 add
v KILN_OPENCL_QUEUES=2 "gdn decode"
v KILN_OPENCL_NC=1 "linear 1x4096 x f16"
v KILN_OPENCL_NC=3 "linear 1x4096 x f16"
v KILN_OPENCL_GEMV_ROWS=8 "linear 1x4096 x f16"
v KILN_OPENCL_GEMV_ROWS=2 "linear 1x4096 x f16"
v KILN_OPENCL_GDN_VC=8 "gdn decode"
echo "== ptx"; python3 $D/ptx_info.py /tmp/kc $OUT flash_attn_dec gemv gdn_recurrent 2>&1 | grep -vE "^ptxas info *: (Compiling|Function properties)" | head -60
rm -f $OUT/prog*.ptx
echo "== conformance"; (time $T kiln conformance --backend opencl --json $OUT/conf.json) 2>&1 | grep -E "^total|real|FAIL|fail" | tail -12
echo "== conformance flash_attn FUSE=0 PIPE=0 XPOSE=0"; (KILN_OPENCL_FA_FUSE=0 KILN_OPENCL_FA_PIPE=0 KILN_OPENCL_FA_XPOSE=0 $T kiln conformance --backend opencl --op flash_attn) 2>&1 | grep -E "^total|FAIL|fail" | tail -5
kill $SMI
python3 - $OUT/clocks.csv <<'PY'
import sys
c = [int(l.split(',')[1].split()[0]) for l in open(sys.argv[1]) if 'MHz' in l]
print("sm clock MHz over the call: samples %d min %d median %d max %d" % (len(c), min(c), sorted(c)[len(c)//2], max(c)) if c else "no clock samples")
PY
echo "== summary"; grep -E "^==|event|copy:" $R | grep -v "^== summary" | cut -c1-250
