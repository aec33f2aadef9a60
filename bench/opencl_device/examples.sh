#!/bin/bash
# kiln run --strict of each example on opencl vs cpu; prefill then decode.
K=${KILN:-build/tools/kiln}; D=${EXDIR:-/tmp/ex}; PY=${PY:-/usr/bin/python3}; CMP=${CMP:-scripts/compare_outputs.py}
mkdir -p $D
for ex in $($K make-example --list); do
  echo "== $ex"
  $K make-example $ex -o $D/$ex.kgraph > /dev/null
  $K run $D/$ex.kgraph --backend opencl --strict --warmup ${WARMUP:-0} --iters ${ITERS:-1} --output-dir $D/$ex-ocl 2>&1 | grep -E "time|pipelines|rror" 
  $K run $D/$ex.kgraph --backend cpu --warmup 0 --iters 1 --output-dir $D/$ex-cpu > /dev/null 2>&1
  $PY $CMP $D/$ex-ocl $D/$ex-cpu
done
for pair in attention-block hybrid-block; do
  echo "== $pair prefill then decode (shared states)"
  $K run $D/$pair-prefill.kgraph --decode $D/$pair-decode.kgraph --backend opencl --strict --steps ${STEPS:-4} --iters 1 2>&1 | tail -8
done
