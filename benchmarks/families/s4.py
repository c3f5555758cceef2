"""S4 kernels (issue #6): the Cauchy product, S4 (DPLR) kernel generation and the FFT convolution
against the NumPy reference pipelines (fastcore.reference.s4) and numpy.fft / scipy.fft peers.

Floors (notes/s4.md §10): all three are compute-bound on the CPU. Cauchy: counted at the
combined conjugate form's 48 flop per (row, state, node) triple; kernel_dplr: 8 flop for the
shared denominator plus 8 per product per (h, state, node), plus the irfft; fftconv: two real
FFTs of n = 2L at 2.5 n log2 n flop plus 6(n/2 + 1) for the multiply per row. GPU cases (H100
targets): kernel_dplr and fftconv at H = 1024, L = 16384 against CuPy reference pipelines.
"""

from __future__ import annotations

import numpy as np

import fastcore
from fastcore import s4
from fastcore.reference import s4 as R
from harness import Case, max_rel_error


def _cerr(actual, expected) -> str:
    """max |a - e| / max |e| for complex (or real) results."""
    a, e = np.asarray(actual), np.asarray(expected)
    return f"max err {float(np.abs(a - e).max() / np.abs(e).max()):.1e}"


def _crandn(rng, *shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def _backward_case(name, backward, reference, forward, params, dt, g):
    """A kernel's backward pass (complex64 parameters, float32 grad) against its float64 reference
    (materialised Vandermonde / per-node loops), with the forward kernel on the same inputs as the
    peer: the backward-to-forward time ratio."""
    p64 = [a.astype(np.complex64) for a in params]
    g32 = g.astype(np.float32)
    return Case(
        family="s4", name=name,
        compiled=lambda: backward(*p64, dt, g32),
        reference=lambda: reference(*p64, dt, g),
        peers={f"its forward, {forward.__name__}": lambda: forward(*p64, dt, g.shape[-1])},
        check=lambda: "dLambda " + _cerr(backward(*p64, dt, g32)[0], reference(*params, dt, g)[0]),
    )


def cases(ctx):
    rng = np.random.default_rng(0)
    out = []

    # ---- Cauchy: batch 256, N = 32 pairs, L' = 2049 nodes, complex64 --------------------------
    batch, N, Lz = ctx.size(256, 64), 32, 2049
    v = _crandn(rng, batch, N).astype(np.complex64)
    w = (-np.abs(rng.standard_normal((batch, N))) + 1j * rng.standard_normal((batch, N))).astype(np.complex64)
    z = (2j * np.tan(np.pi * np.arange(Lz) / 4096)).astype(np.complex64)
    out.append(Case(
        family="s4", name=f"cauchy c64 batch={batch} N={N} L'={Lz}",
        compiled=lambda: s4.cauchy(v, z, w),
        reference=lambda: R.cauchy(v, z, w),
        flops=48.0 * batch * N * Lz,
        check=lambda: _cerr(s4.cauchy(v, z, w), R.cauchy(v, z, w)),
    ))

    # ---- kernel_dplr: H = 256, N = 32, L = 4096, complex64, HiPPO-LegS --------------------------
    H, L = ctx.size(256, 32), 4096
    Lambda, P, B = R.hippo_legs(N, H)
    Ct = _crandn(rng, H, N)
    dt = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), H))
    args = [a.astype(np.complex64) for a in (Lambda, P, B, Ct)]
    out.append(Case(
        family="s4", name=f"kernel_dplr c64 H={H} N={N} L={L}",
        compiled=lambda: s4.kernel_dplr(*args, dt, L),
        reference=lambda: R.kernel_dplr(*args, dt, L),
        flops=H * N * (L // 2) * (8.0 + 8 * 4) + H * 2.5 * L * np.log2(L),
        check=lambda: max_rel_error(s4.kernel_dplr(*args, dt, L), R.kernel_dplr(Lambda, P, B, Ct, dt, L)),
    ))

    # ---- kernel backward passes: H = 32, N = 32, L = 1024, complex64 ----------------------------
    Hb, Lb = ctx.size(32, 8), 1024
    dt_b = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), Hb))
    gK = rng.standard_normal((Hb, Lb))
    lam_d, B_d = R.s4d_lin(N, Hb)
    out.append(_backward_case(f"kernel_diag_backward c64 H={Hb} N={N} L={Lb}", s4.kernel_diag_backward,
                              R.kernel_diag_backward, s4.kernel_diag, (lam_d, B_d, _crandn(rng, Hb, N)), dt_b, gK))
    out.append(_backward_case(f"kernel_dplr_backward c64 H={Hb} N={N} L={Lb}", s4.kernel_dplr_backward,
                              R.kernel_dplr_backward, s4.kernel_dplr, R.hippo_legs(N, Hb) + (_crandn(rng, Hb, N),),
                              dt_b, gK))

    # ---- fftconv: B = 8, H = 256, L = 4096, float32 --------------------------------------------
    Bn, H, L = 8, ctx.size(256, 32), 4096
    u = rng.standard_normal((Bn, H, L)).astype(np.float32)
    K = (rng.standard_normal((H, L)) * np.exp(-np.arange(L) / 500)).astype(np.float32)
    D = rng.standard_normal(H).astype(np.float32)
    n = 2 * L

    def numpy_conv():
        return np.fft.irfft(np.fft.rfft(u, n) * np.fft.rfft(K, n), n)[..., :L] + D[:, None] * u

    def scipy_conv():
        import scipy.fft as sf

        return sf.irfft(sf.rfft(u, n, workers=-1) * sf.rfft(K, n, workers=-1), n, workers=-1)[..., :L] \
            + D[:, None] * u

    y = np.empty_like(u)
    peers = {"numpy.fft": numpy_conv}
    try:
        import scipy.fft  # noqa: F401

        peers["scipy.fft(workers=-1)"] = scipy_conv
    except ImportError:
        pass
    out.append(Case(
        family="s4", name=f"fftconv f32 B={Bn} H={H} L={L}",
        compiled=lambda: s4.fftconv(u, K, D, out=y),
        reference=lambda: R.fftconv(u, K, D),
        peers=peers,
        flops=Bn * H * (2 * 2.5 * n * np.log2(n) + 6 * (n // 2 + 1)),
        check=lambda: max_rel_error(s4.fftconv(u, K, D), R.fftconv(u, K, D)),
    ))

    # ---- the in-house real FFT against numpy.fft --------------------------------------------------
    x = rng.standard_normal((ctx.size(2048, 256), 8192)).astype(np.float32)
    out.append(Case(
        family="s4", name=f"rfft f32 {x.shape[0]}x{x.shape[1]}",
        compiled=lambda: s4.rfft(x),
        peers={"numpy.fft.rfft": lambda: np.fft.rfft(x)},
        flops=x.shape[0] * 2.5 * x.shape[1] * np.log2(x.shape[1]),
        check=lambda: _cerr(s4.rfft(x), np.fft.rfft(x.astype(np.float64))),
    ))

    # ---- GPU: H = 1024, L = 16384 --------------------------------------------------------------
    if fastcore.cuda_available():
        import cupy as cp

        H, L = ctx.size(1024, 128), 16384
        Lambda, P, B = R.hippo_legs(N, H)
        Ct = _crandn(rng, H, N)
        dt = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), H))
        g = [cp.asarray(a.astype(np.complex64)) for a in (Lambda, P, B, Ct)]
        gdt = cp.asarray(dt)

        def cupy_dplr():  # the reference pipeline on CuPy: materialised Cauchy products + irfft
            lam, p, b, ct = g
            t = cp.tan(cp.pi * cp.arange(L // 2) / L)
            zz = (2j * t).astype(cp.complex64)
            ww = (gdt[:, None] * lam).astype(cp.complex64)
            bside = cp.stack([b, p[0]])
            cside = cp.stack([ct, p[0].conj()])
            vv = (gdt[None, None, :, None] * bside[:, None] * cside[None]).astype(cp.complex64)
            r = (vv[..., None, :] / (zz[:, None] - ww[:, None, :])).sum(-1) \
                + (vv.conj()[..., None, :] / (zz[:, None] - ww.conj()[:, None, :])).sum(-1)
            kh = (r[0, 0] - r[0, 1] * r[1, 0] / (1 + r[1, 1])) * (1 + 1j * t)
            return cp.fft.irfft(cp.concatenate([kh, kh[:, -1:].real * 0], -1), L)

        out.append(Case(
            family="s4", name=f"kernel_dplr c64 H={H} N={N} L={L}", device="cuda",
            compiled=lambda: s4.kernel_dplr(*g, gdt, L),
            peers={"cupy pipeline": cupy_dplr},
            note="peer materialises (H, L/2, N) per product",
        ))
        Bn = 16 if not ctx.quick else 2
        gu = cp.asarray(rng.standard_normal((Bn, H, L)).astype(np.float32))
        gK = cp.asarray(rng.standard_normal((H, L)).astype(np.float32))
        gD = cp.asarray(rng.standard_normal(H).astype(np.float32))
        n = 2 * L
        out.append(Case(
            family="s4", name=f"fftconv f32 B={Bn} H={H} L={L}", device="cuda",
            compiled=lambda: s4.fftconv(gu, gK, gD),
            peers={"cupy.fft pipeline": lambda: cp.fft.irfft(cp.fft.rfft(gu, n) * cp.fft.rfft(gK, n), n)[..., :L]
                   + gD[:, None] * gu},
            bytes=2 * gu.nbytes + gK.nbytes,
        ))
    return out
