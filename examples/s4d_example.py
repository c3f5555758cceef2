#!/usr/bin/env python
"""An S4D layer (diagonal state space, S4D-Lin initialisation) applied to a long sequence two ways:
as a convolution (fastcore.s4.kernel_diag + fftconv) and as the recurrence (discretize + scan).
They are the same linear map, so they agree to rounding.

    python examples/s4d_example.py
"""

from __future__ import annotations

import time

import numpy as np

from fastcore import s4


def main() -> None:
    rng = np.random.default_rng(0)
    H, N, L, batch = 32, 32, 16384, 2
    # S4D-Lin: Lambda_n = -1/2 + i pi n, B = 1, random C, log-uniform time steps.
    Lambda = np.tile(-0.5 + 1j * np.pi * np.arange(N), (H, 1))
    B = np.ones((H, N), np.complex128)
    C = (rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N))) * np.sqrt(0.5)
    dt = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), H))
    D = rng.standard_normal(H)
    u = rng.standard_normal((batch, H, L))

    t0 = time.perf_counter()
    K = s4.kernel_diag(Lambda, B, C, dt, L, method="bilinear")      # (H, L)
    y_conv = s4.fftconv(u, K, D)
    t_conv = time.perf_counter() - t0

    t0 = time.perf_counter()
    Abar, Bbar = s4.discretize(Lambda, None, B, dt, method="bilinear")
    y_rec = s4.scan(Abar, Bbar, C, u, D)
    t_rec = time.perf_counter() - t0

    err = np.max(np.abs(y_conv - y_rec)) / np.max(np.abs(y_rec))
    print(f"S4D layer: {H} channels, {N} states, sequence length {L}, batch {batch}")
    print(f"  convolution (kernel + FFT conv): {t_conv * 1e3:8.1f} ms")
    print(f"  recurrence (float64 scan)      : {t_rec * 1e3:8.1f} ms")
    print(f"  max |conv - recurrence| / max |y| = {err:.2e}")
    assert err < 1e-9


if __name__ == "__main__":
    main()
