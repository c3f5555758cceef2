#!/usr/bin/env bash
# The GPU check (issue 8), for a machine with an NVIDIA GPU, nvcc, CuPy and no network:
# build and install fastcore with the CUDA module, run every CUDA test, run compute-sanitizer
# (memcheck, racecheck) over the CUDA tests, and run the GPU benchmarks. Each stage's log goes to
# $LOGDIR (default ./gpu-logs) and its exit status to $LOGDIR/status; a stage that fails does
# not stop the later ones, so one run reports everything.
#
#   STAGES="build tests memcheck racecheck bench" LOGDIR=/tmp/out bash tools/gpu_check.sh
#   (also: cpu-tests, resources (cuobjdump register/shared-memory use), probe (tools/gpu_probe.py))
#
# FASTCORE_CUDA_ARCHITECTURES defaults to 90-real (Hopper, the machine this was written for).
set -uo pipefail
cd "$(dirname "$0")/.."
LOGDIR=${LOGDIR:-gpu-logs}
STAGES=${STAGES:-"build tests memcheck racecheck bench"}
PY=${PYTHON:-python3}
mkdir -p "$LOGDIR"
export PYTHONUNBUFFERED=1 CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
export FASTCORE_CUDA=ON FASTCORE_CUDA_ARCHITECTURES=${FASTCORE_CUDA_ARCHITECTURES:-90-real}
CUDA_TESTS="tests/test_cuda_common.py tests/test_activations_cuda.py tests/test_monarch_cuda.py
            tests/test_s4_cuda.py tests/test_tiger_cuda.py tests/test_ig_cuda.py"

stage() {  # stage NAME TIMEOUT_S COMMAND...: run, log, record the exit status
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@" > "$LOGDIR/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc $((SECONDS - t0))s" | tee -a "$LOGDIR/status"
  tail -n 25 "$LOGDIR/$name.log"
}

for s in $STAGES; do
  case $s in
    build)
      { nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
        nvcc --version | tail -n 2; $PY -V; git log -1 --format='commit %H %s' 2>/dev/null; } \
        > "$LOGDIR/machine.txt" 2>&1
      { echo "g++ links: $(g++ -print-file-name=libstdc++.so) $(readlink -f "$(g++ -print-file-name=libstdc++.so)")"
        ls -la "$(g++ -print-file-name=libstdc++.so)" "$(g++ -print-file-name=libstdc++.a)"; } >> "$LOGDIR/machine.txt" 2>&1
      cat "$LOGDIR/machine.txt"
      stage build 400 bash -c "$PY -m pip install --no-build-isolation --no-deps -v . && cd /tmp \
        && $PY -c 'import fastcore, fastcore._cuda as c; fastcore.show_config(); print(c.compiled_architectures())'"
      # What the modules need and export (cmake/python_module.map: PyInit_* only).
      for so in $(cd /tmp && $PY -c 'import fastcore._cpu as a, fastcore._cuda as b; print(a.__file__, b.__file__)'); do
        echo "$so"; readelf -d "$so" | grep NEEDED; nm -D --defined-only "$so"
      done >> "$LOGDIR/machine.txt" 2>&1 ;;
    tests)  # one pytest process per file, so a crash in one cannot hide the others' results
      for f in $CUDA_TESTS tests/test_backend.py tests/test_checks.py tests/test_package.py tests/test_tiger.py; do
        echo "== $f"; $PY -m pytest "$f" -q -p no:cacheprovider --timeout 120 -rs
      done > "$LOGDIR/tests.log" 2>&1
      grep -E "^== |passed|failed|error|Fatal" "$LOGDIR/tests.log" | tee -a "$LOGDIR/status" ;;
    cpu-tests)
      stage cpu-tests 400 $PY -m pytest tests -q -p no:cacheprovider -n 8 --timeout 300 ;;
    memcheck)
      stage memcheck 300 compute-sanitizer --tool memcheck --error-exitcode 99 --print-limit 20 \
        $PY -m pytest $CUDA_TESTS -q -p no:cacheprovider -x ;;
    racecheck)
      stage racecheck 300 compute-sanitizer --tool racecheck --racecheck-report analysis --error-exitcode 99 \
        --print-limit 20 $PY -m pytest $CUDA_TESTS -q -p no:cacheprovider -x ;;
    bench)
      stage bench 300 $PY benchmarks/run.py --device cuda --out "$LOGDIR" ;;
    resources)  # registers, spills and shared memory of every kernel
      so=$(cd /tmp && $PY -c 'import fastcore._cuda as c; print(c.__file__)')
      cuobjdump --dump-resource-usage "$so" > "$LOGDIR/resources.log" 2>&1
      echo "resources: $(grep -c 'Function' "$LOGDIR/resources.log") kernels" | tee -a "$LOGDIR/status" ;;
    probe)
      stage probe 120 $PY tools/gpu_probe.py ;;
    *) echo "unknown stage $s"; exit 2 ;;
  esac
done
cat "$LOGDIR/status"
