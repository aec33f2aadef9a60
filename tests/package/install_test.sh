#!/usr/bin/env bash
# The install test (ctest -L package): installs the build into a temporary
# prefix, checks what is there (headers, libkiln.so with its SONAME and only
# the public API exported, libkiln.a, the CMake package, kiln.pc, the kiln
# tool, the Python module), then builds examples/embed out of tree against
# it, with CMake once for the shared and once for the static library and
# with pkg-config for the C program, and runs each program and embed.py on a
# small hybrid example (32 prompt tokens, 4 decode steps). Every run must
# print the same checksum.
#
#   tests/package/install_test.sh BUILD_DIR [WITH_PYTHON]
#
# WITH_PYTHON (default 1) is 0 for a build without the Python module
# (KILN_PYTHON=OFF); then the module is neither expected nor run.
#
# Cost: about a minute on 2 cores (two small CMake projects, two links of
# libkiln.a), most of it compiling embed.cc twice.
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(cd "${1:?usage: install_test.sh BUILD_DIR [WITH_PYTHON]}" && pwd)
with_python=${2:-1}
py=${KILN_PYTHON_EXECUTABLE:-/usr/bin/python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-install-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

fail() {
  echo "install test FAILED: $*" >&2
  exit 1
}

echo "-- cmake --install into $prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null

libdir=$(cd "$prefix" && dirname "$(find . -name libkiln.a -print -quit)")
[ "$libdir" != . ] || fail "no libkiln.a under $prefix"
libdir=$prefix/${libdir#./}
for f in include/kiln/kiln.h include/kiln/kiln_c.h bin/kiln; do
  [ -f "$prefix/$f" ] || fail "$f not installed"
done
for f in libkiln.so libkiln.a cmake/kiln/kilnConfig.cmake cmake/kiln/kilnConfigVersion.cmake \
         cmake/kiln/kilnSharedTargets.cmake cmake/kiln/kilnStaticTargets.cmake pkgconfig/kiln.pc; do
  [ -e "$libdir/$f" ] || fail "$libdir/$f not installed"
done
if [ "$with_python" = 1 ]; then
  pydir=$(dirname "$(find "$prefix" -path '*/kiln/__init__.py' -print -quit)")
  [ -f "$pydir/__init__.py" ] || fail "no Python package kiln/ under $prefix"
  ls "$pydir"/_kiln*.so >/dev/null 2>&1 || fail "no extension module _kiln*.so in $pydir"
fi

echo "-- libkiln.so: SONAME and exported symbols"
soname=$(readelf -d "$libdir/libkiln.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ "$soname" == libkiln.so.* ]] || fail "libkiln.so has SONAME '$soname', expected libkiln.so.<version>"
[ -e "$libdir/$soname" ] || fail "$soname (the SONAME) not installed"
# Every defined dynamic symbol is the C API (kiln_*) or in namespace kiln::api.
others=$(nm -D --defined-only -C "$libdir/libkiln.so" | awk '{ $1 = ""; $2 = ""; sub(/^  /, ""); print }' |
         grep -v -e '^kiln_' -e '^kiln::api::' || true)
[ -z "$others" ] || fail "libkiln.so exports symbols outside the public API:
$(echo "$others" | head -n 20)"
exported=$(nm -D --defined-only "$libdir/libkiln.so" | wc -l)
echo "   $soname, $exported symbols exported, all kiln_* or kiln::api::*"

echo "-- example graphs (installed kiln make-example)"
"$prefix/bin/kiln" make-example hybrid-block-prefill --tokens 32 -o "$work/prefill.kgraph" >/dev/null
"$prefix/bin/kiln" make-example hybrid-block-decode -o "$work/decode.kgraph" >/dev/null

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
checksums=()
run() {  # NAME COMMAND...: runs an example, keeps its checksum
  local name=$1 out
  shift
  out=$("$@") || fail "$name exited with $?: $out"
  echo "$out" | sed "s/^/   $name: /"
  checksums+=("$(echo "$out" | awk '$1 == "checksum" { print $2 }')")
}

for kind in shared static; do
  echo "-- examples/embed against the installed kiln ($kind library)"
  static=OFF
  [ "$kind" = static ] && static=ON
  cmake -S "$src/examples/embed" -B "$work/embed-$kind" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" -DKILN_USE_STATIC_LIBS=$static "${launcher[@]}" >/dev/null
  log=$(cmake --build "$work/embed-$kind" 2>&1) || fail "building examples/embed ($kind):
$(echo "$log" | grep -m 20 -E 'error|undefined|FAILED' || echo "$log" | tail -n 20)"
  libs=$(ldd "$work/embed-$kind/embed")  # (not piped into grep -q: pipefail and SIGPIPE)
  if [ "$kind" = shared ]; then
    [[ "$libs" == *"$libdir/libkiln.so"* ]] || fail "embed (shared) does not load $libdir/libkiln.so"
  else
    [[ "$libs" != *libkiln* ]] || fail "embed (static) loads libkiln.so"
  fi
  run "embed ($kind)" "$work/embed-$kind/embed" "$work/prefill.kgraph" "$work/decode.kgraph" --steps 4
  run "embed_c ($kind)" "$work/embed-$kind/embed_c" "$work/prefill.kgraph" "$work/decode.kgraph" --steps 4
done

echo "-- embed.c with pkg-config"
flags=$(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs kiln)
# shellcheck disable=SC2086  # the flags are words
cc -std=gnu99 -O2 -o "$work/embed_pc" "$src/examples/embed/embed.c" $flags -Wl,-rpath,"$libdir" -lm
run "embed_c (pkg-config)" "$work/embed_pc" "$work/prefill.kgraph" "$work/decode.kgraph" --steps 4

programs=6
if [ "$with_python" = 1 ]; then
  echo "-- embed.py against the installed module"
  where=$(cd "$work" && PYTHONPATH="$(dirname "$pydir")" "$py" -c 'import kiln, os; print(os.path.dirname(kiln.__file__))')
  [ "$where" = "$pydir" ] || fail "python imported kiln from $where, not from $pydir"
  run "embed.py" env PYTHONPATH="$(dirname "$pydir")" "$py" "$src/examples/embed/embed.py" \
    "$work/prefill.kgraph" "$work/decode.kgraph" --steps 4
else
  echo "-- no Python module in this build: embed.py not run"
  programs=5
fi

echo "-- the same checksum from every program"
"$py" - "$programs" "${checksums[@]}" <<'EOF'
import sys
expected, values = int(sys.argv[1]), [float(v) for v in sys.argv[2:]]
ref = values[0]
bad = [v for v in values if abs(v - ref) > 1e-3 * max(1.0, abs(ref))]
if len(values) != expected or bad:
    sys.exit(f"install test FAILED: checksums differ: {values}")
print(f"   {len(values)} programs, checksum {ref:.6e}")
EOF
echo "install test passed"
