#!/bin/bash
# CPU linear on the GPU machine's host (Xeon, AVX-512, AMX; issue 10): the
# AVX-512 / AMX paths' tests and conformance, then `kiln bench linear` of
# this build against main's (kiln_main on the PATH, from gpu-prepare)
# alternated, and the tuning variants of docs/DESIGN.md (KILN_CPU_AMX,
# KILN_CPU_GEMV) one process each. Needs kiln, kiln_main
# and kiln_backends_tests on the PATH (`source .gpu/env.sh`). Variants are
# skipped once MAX_S seconds (default 100) have passed; the closing
# main / this pair always runs. Rows and limits go to stdout.
set -u
t0=$(date +%s)
grep -m1 'model name' /proc/cpuinfo
bf="--case m=512,n=12288,k=4096,w=bf16"
f16="--case m=512,n=12288,k=4096,w=f16"
f32="--case m=512,n=6144,k=2048,w=f32"
g16="--case m=1,n=4096,k=12288,w=f16"
gbf="--case m=1,n=4096,k=12288,w=bf16"
max_s=${MAX_S:-100}
bench() {  # label binary "VAR=value ..." cases...
  local label=$1 bin=$2 vars=$3; shift 3
  if [[ $label != main* && $label != this* ]] && (($(date +%s) - t0 > max_s)); then echo "skip $label"; return; fi
  echo "== $label ($vars) at $(($(date +%s) - t0)) s"
  env $vars timeout 30 "$bin" bench linear --threads 16 --min-time 60 "$@" 2>&1 | grep -E '^limits|^custom' | tr -s ' '
}
echo "== tests"
for vars in "X=0" "KILN_CPU_AMX=rows=128,depth=1024,panel=0,prefetch=0 KILN_CPU_GEMV=prefetch=1024"; do
  env $vars timeout 60 kiln_backends_tests --gtest_filter='CpuGemm*:CpuFeatures*' 2>&1 | grep -E 'bf16 path|PASSED|FAILED|Failure' | head -8
  env $vars timeout 60 kiln conformance --backend cpu --op linear 2>&1 | grep '^total'
  env $vars timeout 60 kiln conformance --backend cpu --op matmul 2>&1 | grep '^total'
done
bench main kiln_main "X=0" $bf $f16 $f32 $g16 $gbf
bench this kiln "X=0" $bf $f16 $f32 $g16 $gbf
for v in rows=512,panel=0,prefetch=0 panel=0,prefetch=0 panel=0 prefetch=0 rows=128 rows=512 depth=1024; do
  bench "amx $v" kiln "KILN_CPU_AMX=$v" $bf
done
bench main2 kiln_main "X=0" $bf $f16 $g16
for v in prefetch=512 prefetch=1024 prefetch=2048; do bench "gemv $v" kiln "KILN_CPU_GEMV=$v" $g16 $gbf; done
bench main3 kiln_main "X=0" $bf $f16 $f32 $g16 $gbf
bench this3 kiln "X=0" $bf $f16 $f32 $g16 $gbf
echo "total $(($(date +%s) - t0)) s"
