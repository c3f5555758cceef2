"""Where the time goes in a few GPU calls (diagnostics for issue 8; not a benchmark): host-side
cost per call (wall clock with the GPU idle) and, under cProfile, the Python functions behind it."""
import cProfile
import pstats
import sys
import time

import cupy as cp
import numpy as np

from fastcore import activations as A
from fastcore import monarch as M

rng = np.random.default_rng(0)


def wall(fn, reps=200):
    fn()
    cp.cuda.Device().synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    cp.cuda.Device().synchronize()
    return (time.perf_counter() - t) / reps


def gpu(fn, reps=20):
    fn()
    a, b = cp.cuda.Event(), cp.cuda.Event()
    a.record()
    for _ in range(reps):
        fn()
    b.record()
    b.synchronize()
    return cp.cuda.get_elapsed_time(a, b) / 1e3 / reps


x1 = cp.asarray(rng.standard_normal((1, 4096), dtype=np.float32))
xb = cp.asarray(rng.standard_normal((8192, 4096), dtype=np.float32))
w1 = cp.asarray(rng.standard_normal((64, 64, 64), dtype=np.float32))
w2 = cp.asarray(rng.standard_normal((64, 64, 64), dtype=np.float32))
small = cp.asarray(rng.standard_normal((4, 64), dtype=np.float32))
cases = {
    "monarch f32 B=1 n=4096": lambda: M.multiply(x1, w1, w2),
    "monarch f32 B=8192 n=4096": lambda: M.multiply(xb, w1, w2),
    "softmax f32 4x64": lambda: A.softmax(small),
}
for name, fn in cases.items():
    print(f"{name:32s} wall {wall(fn) * 1e6:9.1f} us/call   back-to-back GPU {gpu(fn) * 1e6:9.1f} us/call")
print(M._gpu_plan(xb, w1, w2))
prof = cProfile.Profile()
prof.enable()
for _ in range(200):
    M.multiply(x1, w1, w2)
cp.cuda.Device().synchronize()
prof.disable()
pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(12)
