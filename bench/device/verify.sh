#!/bin/bash
# End-to-end checks of the GPU backends on the GPU machine (issues 8 and 9),
# from a payload made by ../shared/scripts/gpu-prepare with build/tools/kiln,
# build/bench/kiln_vk_bench and build/bench/kiln_opencl_floors, after
# `source .gpu/env.sh`, from the repository root:
#   bash bench/device/verify.sh [vulkan|opencl|mixed|barriers|floors ...]   (default: all)
# For each GPU backend: the conformance quick grid, `kiln run --strict` of
# every example against the CPU's outputs, prefill then decode on shared
# states; a mixed placement (--backend vulkan,opencl,cpu with one op taken
# from Vulkan) against the CPU; Vulkan with a barrier before every node
# against barriers only where nodes share memory; the floors benches. Logs and JSON go to $OUT.
set -u
out=${OUT:-/tmp/verify}; mkdir -p "$out"
ex=/tmp/verify-ex; mkdir -p "$ex"
export KILN_CACHE_DIR=${KILN_CACHE_DIR:-/tmp/verify-cache}
cmp=scripts/compare_outputs.py; py=${PY:-python3}  # with numpy
parts=${*:-vulkan opencl mixed barriers floors}
# The layer examples (the whole-model ones are timed by `kiln bench model`).
examples="attention-block-decode attention-block-prefill hybrid-block-decode hybrid-block-prefill"
status=0

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader 2>/dev/null
echo "host cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
for e in $examples; do kiln make-example "$e" -o "$ex/$e.kgraph" >/dev/null; done
for e in $examples; do
  kiln run "$ex/$e.kgraph" --backend cpu --warmup 0 --iters 1 --output-dir "$ex/$e-cpu" >/dev/null 2>&1
done

check_backend() {  # $1: vulkan or opencl
  local b=$1
  echo "== $b: conformance quick grid"
  (time timeout ${GRID_TIMEOUT:-200} kiln conformance --backend "$b" --json "$out/conformance-$b.json") 2>&1 | grep -E "^total|passed|failed|real" | tail -4
  "$py" -c "import json,collections;d=json.load(open('$out/conformance-$b.json'));print(collections.Counter(c['result'] for c in d['cases']))" || status=1
  for e in $examples; do
    echo "== $b: $e --strict vs cpu"
    kiln run "$ex/$e.kgraph" --backend "$b" --strict --warmup 1 --iters 5 --output-dir "$ex/$e-$b" 2>&1 | grep -E "^time|rror" || status=1
    "$py" "$cmp" "$ex/$e-$b" "$ex/$e-cpu" || status=1
  done
  for pair in attention-block hybrid-block; do
    echo "== $b: $pair prefill then decode on shared states"
    kiln run "$ex/$pair-prefill.kgraph" --decode "$ex/$pair-decode.kgraph" --backend "$b" --strict --steps 16 --iters 2 2>&1 | tail -4 || status=1
  done
}

for p in $parts; do
  case $p in
    vulkan|opencl) check_backend "$p" ;;
    mixed)
      for e in hybrid-block-decode hybrid-block-prefill; do
        echo "== mixed: $e --backend vulkan,opencl,cpu --disable-op vulkan:gated_delta_net"
        kiln plan "$ex/$e.kgraph" --backend vulkan,opencl,cpu --disable-op vulkan:gated_delta_net | grep -E "^graph|gated_delta_net"
        kiln run "$ex/$e.kgraph" --backend vulkan,opencl,cpu --disable-op vulkan:gated_delta_net --warmup 1 --iters 3 \
          --output-dir "$ex/$e-mixed" 2>&1 | grep -E "^time|rror" || status=1
        "$py" "$cmp" "$ex/$e-mixed" "$ex/$e-cpu" || status=1
      done ;;
    barriers)  # Vulkan plain runs: a barrier before every node vs only where memory is shared
      for e in hybrid-block-decode attention-block-decode hybrid-block-prefill; do
        for round in 1 2; do
          for mode in all hazards; do
            echo -n "== barriers=$mode $e (round $round): "
            KILN_VULKAN_BARRIERS=$mode kiln run "$ex/$e.kgraph" --backend vulkan --strict --no-profile --warmup 3 \
              --iters 30 --output-dir "$ex/$e-vk-$mode" 2>&1 | grep -E "^time|rror" || status=1
          done
        done
        "$py" "$cmp" "$ex/$e-vk-hazards" "$ex/$e-cpu" || status=1
      done
      for mode in all hazards; do
        echo "== barriers=$mode: kiln bench model qwen3.5-0.8b --backend vulkan"
        KILN_VULKAN_BARRIERS=$mode timeout 200 kiln bench model qwen3.5-0.8b --backend vulkan -p 512 -n 32 -d 0 \
          --reps 3 --json "$out/bm-vulkan-$mode.json" 2>&1 | grep -v "^\s*$" | tail -12 || status=1
      done ;;
    floors)
      echo "== kiln_vk_bench"; kiln_vk_bench --iters 20 2>&1 | tee "$out/vk_bench.txt" | tail -40
      echo "== kiln_opencl_floors"; kiln_opencl_floors --iters 30 2>&1 | tee "$out/opencl_floors.txt" | tail -40 ;;
    *) echo "unknown part $p"; status=2 ;;
  esac
done
echo "verify: status $status"
exit $status
