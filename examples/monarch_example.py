#!/usr/bin/env python
"""Replace a trained dense layer by a Monarch layer: fit a dense linear layer by least squares on
data from a structured teacher, project its weight onto Monarch matrices (the optimal Frobenius
approximation), and compare accuracy, parameters and speed.

    python examples/monarch_example.py
"""

from __future__ import annotations

import time

import numpy as np

from fastcore import monarch as M


def timed(fn, repeat=5):
    fn()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def main() -> None:
    rng = np.random.default_rng(0)
    n, nblocks = 1024, 32
    m = n // nblocks
    # A teacher that is Monarch plus a little dense noise; the "trained" layer is fit to its data.
    t1 = rng.standard_normal((nblocks, m, m)) / np.sqrt(m)
    t2 = rng.standard_normal((nblocks, m, m)) / np.sqrt(m)
    teacher = M.to_dense(t1, t2) + 0.01 * rng.standard_normal((n, n)) / np.sqrt(n)
    x_train = rng.standard_normal((4 * n, n))
    y_train = x_train @ teacher.T + 0.01 * rng.standard_normal((4 * n, n))
    dense = np.linalg.lstsq(x_train, y_train, rcond=None)[0].T        # the trained dense weight

    layer = M.MonarchLinear.from_dense(dense.astype(np.float32), np.zeros(n, np.float32), nblocks=nblocks)
    x_test = rng.standard_normal((4096, n)).astype(np.float32)
    y_dense = x_test @ dense.T.astype(np.float32)
    y_monarch = layer(x_test)
    rel = np.linalg.norm(y_monarch - y_dense) / np.linalg.norm(y_dense)
    params = layer.w1.size + layer.w2.size
    print(f"dense {n}x{n} layer -> Monarch with {nblocks} blocks")
    print(f"  parameters     : {dense.size:,} -> {params:,} ({dense.size / params:.0f}x fewer)")
    print(f"  relative error : {rel:.3e} on held-out inputs (the teacher's dense noise is ~1e-2)")
    wd = dense.T.astype(np.float32)
    t_dense = timed(lambda: x_test @ wd)
    t_monarch = timed(lambda: layer(x_test))
    print(f"  batch 4096     : dense {t_dense * 1e3:.1f} ms, Monarch {t_monarch * 1e3:.1f} ms "
          f"({t_dense / t_monarch:.1f}x)")


if __name__ == "__main__":
    main()
