#!/bin/bash
# The next device call (not run in the fourth session, whose device time was
# spent by gpu_run5.sh): registers, spills and stack of the decode programs
# (the open question of RESULTS.md's fourth-session section: how many FA
# decode work-groups an SM holds), the conformance quick grid on the final
# build, and its floors. About 3 minutes of run time; every floors process
# takes 10-20 s (NVIDIA's program builds), the full table over 60 s.
cd "$(dirname "$0")/../.."
R=$OUT/run6.log; exec > >(tee -a $R) 2>&1
export KILN_CACHE_DIR=/tmp/kc CUDA_CACHE_DISABLE=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv
F="kiln_opencl_floors --iters 3"
for c in fa_decode "linear 1x4096 x f16" "gdn decode"; do timeout 60 $F --only "$c" > /dev/null; done
echo "== ptx"; python3 .gpu/data/ptx_info.py /tmp/kc $OUT flash_attn_dec gemv gdn_recurrent 2>&1 |
  grep -vE "^ptxas info *: (Compiling|Function properties)" | head -60
rm -f $OUT/prog*.ptx
echo "== conformance"; (time timeout 200 kiln conformance --backend opencl --json $OUT/conf.json) 2>&1 |
  grep -E "^total|real|FAIL|fail" | tail -12
echo "== floors --iters 30"; timeout 150 kiln_opencl_floors --iters 30
echo "== summary"; grep -E "^==|event|copy:" $R | grep -v "^== summary" | cut -c1-250
