"""Fit of erfcx(a) = erfc(a)·exp(a²) ≈ R(t), t = 1/(1 + P·a), a in [0, A_MAX], for the float32
GELU of cpp/ig/mlp_kernels.simd.cpp, which evaluates erfc(a) = exp(−a²)·t·Q(t). Q = R/t is a
polynomial of degree DEG in t (less cancellation in float32 Horner than fitting R itself);
Lawson's iteratively reweighted least squares drives the relative error toward equioscillation.
Prints the relative errors of the float64 fit and of a float32 Horner evaluation, and Q's
monomial coefficients (highest degree first, as the kernel's Horner steps use them).
Run: python tools/fit_erfcx.py (needs NumPy and SciPy)."""

import numpy as np
from scipy.special import erfcx

P, DEG, A_MAX = 0.5, 8, 12.0


def fit():
    a = np.linspace(0.0, A_MAX, 40001)
    t = 1.0 / (1.0 + P * a)
    y = erfcx(a) / t                                   # Q = R / t
    lo = 1.0 / (1.0 + P * A_MAX)
    u = (2.0 * t - (1.0 + lo)) / (1.0 - lo)          # t mapped to [-1, 1]: a well-conditioned basis
    V = np.polynomial.chebyshev.chebvander(u, DEG)
    weight = np.ones_like(a)
    for _ in range(60):                                # Lawson: weights grow where the error is large
        s = np.sqrt(weight) / y
        c, *_ = np.linalg.lstsq(V * s[:, None], y * s, rcond=None)
        err = np.abs(V @ c - y) / y
        weight *= err
        weight /= weight.sum()
    # Chebyshev series in u -> power series in t
    cheb = np.polynomial.Chebyshev(c, domain=[lo, 1.0])
    mono = cheb.convert(kind=np.polynomial.Polynomial).coef   # ascending powers of t
    return a, t, y, mono


def main():
    a, t, y, mono = fit()
    f64 = np.polyval(mono[::-1], t)
    print(f"float64 fit: max relative error {np.max(np.abs(f64 - y) / y):.2e}")
    y = erfcx(a.astype(np.float32).astype(np.float64))  # R at the float32 argument
    c32 = mono[::-1].astype(np.float32)
    t32 = (np.float32(1) / (np.float32(1) + np.float32(P) * a.astype(np.float32))).astype(np.float32)
    r = np.zeros_like(t32)
    for coef in c32:
        r = (r * t32 + coef).astype(np.float32)
    r = (r * t32).astype(np.float32)
    print(f"float32 Horner: max relative error {np.max(np.abs(r.astype(np.float64) - y) / y):.2e}")
    print("coefficients of Q, highest power first:")
    for coef in mono[::-1]:
        print(f"  {coef:.9e}f")


if __name__ == "__main__":
    main()
