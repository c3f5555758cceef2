"""Float64 (complex128) NumPy references for the S4 family (notes/s4.md), written from the
formulas: clarity and accuracy over speed.

Conventions: H channels, N stored states = one half of the conjugate pairs (the full state is
[x, conj x]); A = diag(Lambda) - sum_r P_r P_r^H; bilinear discretisation; K_l = C_f Abar^l Bbar_f
with C_f = [C, conj C] (so K is real, "2 Re" of the half sum); Ct = C (I - Abar^L) is what the
fused S4 kernel consumes.

Oracles: ``discretize`` + ``kernel_power`` (dense Abar powers, O(L N^2)), ``scan`` (the
unrolled recurrence), ``fftconv_direct`` (explicit sums); pipelines as a user would write them
in NumPy: ``cauchy`` (broadcasting), ``kernel_dplr`` (notes §3), ``kernel_diag`` (materialised
Vandermonde), ``fftconv`` (numpy.fft), ``rtf_kernel``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "cauchy", "cauchy_backward", "vandermonde", "vandermonde_backward", "full_state", "discretize",
    "kernel_power", "ctilde", "double_length", "kernel_dplr", "kernel_diag", "diag_coefficients", "scan",
    "fftconv", "fftconv_direct", "fftconv_backward", "rtf_kernel", "hippo_legs", "s4d_lin", "random_dplr",
]

_c = np.complex128


def cauchy(v, z, w, conj=True, block=16):
    """sum_i v_i/(z_j - w_i) (+ conj(v_i)/(z_j - conj w_i)) for v, w (..., N), z (L'): (..., L').
    Broadcasting over (rows, L', N), a block of rows at a time to bound memory."""
    v, z, w = np.asarray(v, _c), np.asarray(z, _c), np.asarray(w, _c)
    lead = v.shape[:-1]
    v2, w2 = v.reshape(-1, v.shape[-1]), w.reshape(-1, w.shape[-1])
    out = np.empty((v2.shape[0], z.shape[0]), _c)
    for s in range(0, v2.shape[0], block):
        vb, wb = v2[s:s + block, None, :], w2[s:s + block, None, :]
        r = (vb / (z[None, :, None] - wb)).sum(-1)
        if conj:
            r = r + (vb.conj() / (z[None, :, None] - wb.conj())).sum(-1)
        out[s:s + block] = r
    return out.reshape(lead + (z.shape[0],))


def cauchy_backward(v, z, w, grad, conj=True):
    """(dv, dw) with grad = dL/dRe y + i dL/dIm y (notes §6.1)."""
    v, z, w, g = (np.asarray(a, _c) for a in (v, z, w, grad))
    d = z[..., :, None] - w[..., None, :]           # (..., L', N)
    gg = g[..., :, None]
    dv = (gg / d.conj()).sum(-2)
    s2 = (gg / d.conj() ** 2).sum(-2)
    if conj:
        e = z[..., :, None] - w.conj()[..., None, :]
        dv = dv + (gg.conj() / e).sum(-2)
        s2 = s2 + (gg.conj() / e ** 2).sum(-2)
    return dv, v.conj() * s2


def vandermonde(v, x, L, conj=True):
    """2 Re sum_n v_n exp(x_n l) (conj) or the complex sum, l < L: (..., L). Materialises
    (..., N, L)."""
    v, x = np.asarray(v, _c), np.asarray(x, _c)
    l = np.arange(L)
    y = (v[..., None] * np.exp(x[..., None] * l)).sum(-2)
    return 2 * y.real if conj else y


def vandermonde_backward(v, x, L, grad, conj=True):
    """(dv, dx) (complex, same convention as cauchy_backward); grad real (conj) or complex."""
    v, x = np.asarray(v, _c), np.asarray(x, _c)
    l = np.arange(L)
    e = np.exp(x[..., None] * l).conj()
    G = 2 * np.asarray(grad, np.float64) if conj else np.asarray(grad, _c)
    dv = (G[..., None, :] * e).sum(-1)
    dx = v.conj() * (G[..., None, :] * l * e).sum(-1)
    return dv, dx


def full_state(Lambda, P, B):
    """Dense full-state A (H, 2N, 2N) = diag([Lambda, conj Lambda]) - sum_r p_r p_r^H with
    p_r = [P_r, conj P_r], and B_f (H, 2N) = [B, conj B]."""
    Lambda, B = np.asarray(Lambda, _c), np.asarray(B, _c)
    H, N = Lambda.shape
    lam = np.concatenate([Lambda, Lambda.conj()], -1)
    A = np.zeros((H, 2 * N, 2 * N), _c)
    A[:, np.arange(2 * N), np.arange(2 * N)] = lam
    if P is not None:
        P = np.asarray(P, _c)
        pf = np.concatenate([P, P.conj()], -1)       # (r, H, 2N)
        A -= np.einsum("rhi,rhj->hij", pf, pf.conj())
    return A, np.concatenate([B, B.conj()], -1)


def discretize(Lambda, P, B, dt, method="bilinear"):
    """Bilinear (or, diagonal only, ZOH) discretisation. P None: half-state diagonal (Abar, Bbar)
    each (H, N). Otherwise dense full state: Abar (H, 2N, 2N), Bbar (H, 2N)."""
    dt = np.asarray(dt, np.float64)
    Lambda, B = np.asarray(Lambda, _c), np.asarray(B, _c)
    if P is None:
        w = dt[:, None] * Lambda
        if method == "zoh":
            # expm1: e^w - 1 cancels for small |dt Lambda| (exactly 0 below |w| ~ 1e-16)
            return np.exp(w), np.expm1(w) / Lambda * B
        return (1 + w / 2) / (1 - w / 2), dt[:, None] * B / (1 - w / 2)
    if method != "bilinear":
        raise ValueError("dense (DPLR) discretisation is bilinear only")
    A, Bf = full_state(Lambda, P, B)
    eye = np.eye(A.shape[-1])
    M = eye - dt[:, None, None] / 2 * A
    Ab = np.linalg.solve(M, eye + dt[:, None, None] / 2 * A)
    Bb = dt[:, None] * np.linalg.solve(M, Bf[..., None])[..., 0]
    return Ab, Bb


def _full_c(C, N):
    C = np.asarray(C, _c)
    return np.concatenate([C, C.conj()], -1) if C.shape[-1] == N else C


def kernel_power(Abar, Bbar, C, L):
    """K_l = C_f Abar^l Bbar by repeated matrix-vector products (dense) or powers (diagonal,
    2 Re of the half sum). C (H, N) or (C, H, N) half-state -> K (H, L) or (C, H, L), real."""
    Abar, Bbar, C = np.asarray(Abar, _c), np.asarray(Bbar, _c), np.asarray(C, _c)
    squeeze = C.ndim == 2
    C = C[None] if squeeze else C
    K = np.empty(C.shape[:2] + (L,))
    if Abar.ndim == 2:  # diagonal, half state
        x = Bbar.copy()
        for l in range(L):
            K[..., l] = 2 * (C * x).sum(-1).real
            x = Abar * x
    else:
        Cf = _full_c(C, Abar.shape[-1] // 2)
        x = Bbar.copy()
        for l in range(L):
            y = (Cf * x).sum(-1)
            K[..., l] = y.real
            x = np.einsum("hij,hj->hi", Abar, x)
    return K[0] if squeeze else K


def _abar_power(Lambda, P, B, dt, L):
    Ab, _ = discretize(Lambda, P, B, dt)
    return np.linalg.matrix_power(Ab, L) if L > 0 else np.broadcast_to(np.eye(Ab.shape[-1]), Ab.shape)


def ctilde(Lambda, P, B, C, dt, L):
    """Ct = C (I - Abar^L) on the full state, returned as its first (stored) half: (H, N) or
    (C, H, N). P None: diagonal."""
    Lambda = np.asarray(Lambda, _c)
    N = Lambda.shape[-1]
    if P is None:
        Ab, _ = discretize(Lambda, None, B, dt)
        return np.asarray(C, _c) * (1 - Ab ** L)
    AL = _abar_power(Lambda, P, B, dt, L)
    Cf = _full_c(C, N)
    return (Cf - np.einsum("...hi,hij->...hj", Cf, AL))[..., :N]


def double_length(Lambda, P, B, Ct, dt, L):
    """Ct for 2L from Ct for L: Ct_2L = Ct_L (I + Abar^L)."""
    Lambda = np.asarray(Lambda, _c)
    N = Lambda.shape[-1]
    if P is None:
        Ab, _ = discretize(Lambda, None, B, dt)
        return np.asarray(Ct, _c) * (1 + Ab ** L)
    AL = _abar_power(Lambda, P, B, dt, L)
    Cf = _full_c(Ct, N)
    return (Cf + np.einsum("...hi,hij->...hj", Cf, AL))[..., :N]


def kernel_dplr(Lambda, P, B, Ct, dt, L):
    """The S4 kernel pipeline of notes §3 in complex128: nodes z_k = 2i tan(pi k/L), four (or
    (1+r)(C+r)) conjugate-pair Cauchy products, Woodbury, (1 + i t), closed-form Nyquist node,
    irfft. Ct (H, N) or (C, H, N) -> K (H, L) or (C, H, L)."""
    Lambda, B, Ct = np.asarray(Lambda, _c), np.asarray(B, _c), np.asarray(Ct, _c)
    P = np.zeros((0,) + Lambda.shape, _c) if P is None else np.asarray(P, _c)
    dt = np.asarray(dt, np.float64)
    squeeze = Ct.ndim == 2
    Ct = Ct[None] if squeeze else Ct
    nC, r = Ct.shape[0], P.shape[0]
    H = Lambda.shape[0]
    nreg = (L + 1) // 2
    t = np.tan(np.pi * np.arange(nreg) / L)
    z = 2j * t
    w = dt[:, None] * Lambda
    bside = np.concatenate([B[None], P], 0)             # (1+r, H, N)
    cside = np.concatenate([Ct, P.conj()], 0)           # (C+r, H, N)
    v = dt[None, None, :, None] * bside[:, None] * cside[None, :]
    k = cauchy(v, z, np.broadcast_to(w, v.shape))       # (1+r, C+r, H, nreg)
    k00, k01 = k[0, :nC], k[1:, :nC]                    # (C, H, n), (r, C, H, n)
    k10, k11 = k[0, nC:], k[1:, nC:]                    # (r, H, n), (r_b, r_c, H, n)
    if r:
        M = np.eye(r) + np.moveaxis(k11, (0, 1), (-1, -2))          # [h, n, i(c-side), j(b-side)]
        x = np.linalg.solve(M, np.moveaxis(k10, 0, -1)[..., None])[..., 0]  # (H, n, r)
        khat = k00 - np.einsum("qchn,hnq->chn", k01, x)
    else:
        khat = k00
    khat = khat * (1 + 1j * t)
    full = np.zeros((nC, H, L // 2 + 1), _c)
    full[..., :nreg] = khat
    if L % 2 == 0:
        full[..., L // 2] = dt * (Ct * B).sum(-1).real
    K = np.fft.irfft(full, L)
    return K[0] if squeeze else K


def kernel_dplr_backward(Lambda, P, B, Ct, dt, grad):
    """(dLambda, dP, dB, dCt, ddt (H,)) of kernel_dplr for dL/dK = grad, complex gradients
    dz = dL/dRe z + i dL/dIm z. Written to be checked, not fast: the inverse DFT's adjoint from its
    explicit real matrix (K = A_re Re F + A_im Im F over the bins), Woodbury by an explicit inverse
    per (channel, node), the materialised Cauchy backward."""
    Lambda, B, Ct = np.asarray(Lambda, _c), np.asarray(B, _c), np.asarray(Ct, _c)
    p_given = P is not None
    P = np.zeros((0,) + Lambda.shape, _c) if P is None else np.asarray(P, _c).reshape(-1, *Lambda.shape)
    dt = np.asarray(dt, np.float64)
    g = np.asarray(grad, np.float64)
    squeeze = Ct.ndim == 2
    Ct, g = (Ct[None], g[None]) if squeeze else (Ct, g)
    nC, r, L = Ct.shape[0], P.shape[0], g.shape[-1]
    nreg = (L + 1) // 2
    t = np.tan(np.pi * np.arange(nreg) / L)
    z = 2j * t
    # irfft as a real matrix: K_l = sum_k m_k (Re F_k cos(2 pi k l/L) - Im F_k sin(...)) / L,
    # m_k = 1 for the DC and Nyquist bins, 2 for the mirrored ones (Im of DC/Nyquist unused).
    nb = L // 2 + 1
    ang = 2 * np.pi * np.outer(np.arange(L), np.arange(nb)) / L
    m = np.full(nb, 2.0)
    m[0] = 1.0
    if L % 2 == 0:
        m[-1] = 1.0
    A_re, A_im = m * np.cos(ang) / L, -m * np.sin(ang) / L
    A_im[:, 0] = 0.0
    if L % 2 == 0:
        A_im[:, -1] = 0.0
    dF = g @ A_re + 1j * (g @ A_im)                       # (C, H, nb)
    dkhat = dF[..., :nreg] * np.conj(1 + 1j * t)
    w = dt[:, None] * Lambda
    bside = np.concatenate([B[None], P], 0)
    cside = np.concatenate([Ct, P.conj()], 0)
    v = dt[None, None, :, None] * bside[:, None] * cside[None, :]
    wb = np.broadcast_to(w, v.shape)
    k = cauchy(v, z, wb)
    dk = np.zeros_like(k)
    H = Lambda.shape[0]
    for h in range(H):
        for j in range(nreg):
            k00, k01, k10 = k[0, :nC, h, j], k[1:, :nC, h, j], k[0, nC:, h, j]   # (C,), (r, C), (r,)
            dkh = dkhat[:, h, j]
            dk[0, :nC, h, j] = dkh
            if r:
                Minv = np.linalg.inv(np.eye(r) + k[1:, nC:, h, j].T)              # M[i, jb] = k11[jb, i]
                x = Minv @ k10
                dk[1:, :nC, h, j] = -np.outer(np.conj(x), dkh)
                dx = -np.conj(k01) @ dkh
                dk10 = np.conj(Minv).T @ dx
                dk[0, nC:, h, j] = dk10
                dk[1:, nC:, h, j] = (-np.outer(dk10, np.conj(x))).T
    dv, dw = cauchy_backward(v, z, wb, dk)
    dbside = (dv * np.conj(dt[None, None, :, None] * cside[None, :])).sum(1)
    dcside = (dv * np.conj(dt[None, None, :, None] * bside[:, None])).sum(0)
    dLambda = dt[:, None] * dw.sum((0, 1))
    ddt = (dv * np.conj(bside[:, None] * cside[None, :])).real.sum((0, 1, 3)) + \
        (dw.sum((0, 1)) * np.conj(Lambda)).real.sum(-1)
    dB, dP, dCt = dbside[0], dbside[1:] + np.conj(dcside[nC:]), dcside[:nC]
    if L % 2 == 0:
        gN = dF[..., -1].real
        dCt = dCt + (gN * dt)[..., None] * np.conj(B)[None]
        dB = dB + ((gN * dt)[..., None] * np.conj(Ct)).sum(0)
        ddt = ddt + (gN * (Ct * B[None]).sum(-1).real).sum(0)
    return dLambda, (dP if p_given else None), dB, (dCt[0] if squeeze else dCt), ddt


def diag_coefficients(Lambda, B, C, dt, method="zoh"):
    """(v, x) of the S4D kernel K_l = 2 Re sum_n v_n exp(x_n l) (notes §5)."""
    Lambda, B, C = np.asarray(Lambda, _c), np.asarray(B, _c), np.asarray(C, _c)
    w = np.asarray(dt, np.float64)[:, None] * Lambda
    if method == "zoh":
        return C * B * np.expm1(w) / Lambda, np.broadcast_to(w, C.shape)
    return C * B * (np.asarray(dt, np.float64)[:, None] / (1 - w / 2)), \
        np.broadcast_to(np.log((1 + w / 2) / (1 - w / 2)), C.shape)


def kernel_diag(Lambda, B, C, dt, L, method="zoh"):
    """S4D kernel via the materialised Vandermonde product: (H, L) or (C, H, L)."""
    v, x = diag_coefficients(Lambda, B, C, dt, method)
    return vandermonde(v, x, L)


def kernel_diag_backward(Lambda, B, C, dt, grad, method="zoh"):
    """(dLambda, dB, dC, ddt (H,)) of the S4D kernel for dL/dK = grad, by the chain rule through
    diag_coefficients with textbook derivatives (zoh: d/dLambda (e^w - 1)/Lambda = (dt e^w -
    (e^w - 1)/Lambda)/Lambda, which cancels for tiny |w| but needs no series) and the materialised
    Vandermonde backward. Complex gradients dz = dL/dRe z + i dL/dIm z."""
    Lambda, B, C = np.asarray(Lambda, _c), np.asarray(B, _c), np.asarray(C, _c)
    d = np.asarray(dt, np.float64)[:, None]
    v, x = diag_coefficients(Lambda, B, C, dt, method)
    L = np.asarray(grad).shape[-1]
    dv, dx = vandermonde_backward(v, x, L, grad)
    w = d * Lambda
    if method == "zoh":
        E = np.exp(w)
        f = np.expm1(w) / Lambda
        df_dlam, df_ddt = (d * E - f) / Lambda, E
        dx_dlam, dx_ddt = np.broadcast_to(d, w.shape), Lambda
    else:
        f = d / (1 - w / 2)
        df_dlam, df_ddt = d * d / 2 / (1 - w / 2) ** 2, 1 / (1 - w / 2) ** 2
        dx_dlam = d / 2 * (1 / (1 + w / 2) + 1 / (1 - w / 2))
        dx_ddt = Lambda / 2 * (1 / (1 + w / 2) + 1 / (1 - w / 2))
    lead = tuple(range(C.ndim - 2))
    dC = np.conj(B * f) * dv
    dB = (np.conj(C * f) * dv).sum(axis=lead)
    dLambda = (np.conj(C * B * df_dlam) * dv + np.conj(dx_dlam) * dx).sum(axis=lead)
    ddt = ((dv * np.conj(C * B * df_ddt)).real + (dx * np.conj(dx_ddt)).real).sum(axis=lead).sum(-1)
    return dLambda, dB, dC, ddt


def scan(Abar, Bbar, C, u, D=None):
    """The unrolled recurrence x_k = Abar x_{k-1} + Bbar u_k, y_k = Re(C_f x_k) + D u_k
    (diagonal: y = 2 Re(C x)), x_{-1} = 0. u (B, H, L) real -> y (B, H, L)."""
    Abar, Bbar, C = np.asarray(Abar, _c), np.asarray(Bbar, _c), np.asarray(C, _c)
    u = np.asarray(u, np.float64)
    Bn, H, L = u.shape
    y = np.empty((Bn, H, L))
    x = np.zeros((Bn,) + Bbar.shape, _c)
    diag = Abar.ndim == 2
    Cf = C if diag else _full_c(C, Abar.shape[-1] // 2)
    for k in range(L):
        x = (Abar * x if diag else np.einsum("hij,bhj->bhi", Abar, x)) + Bbar * u[:, :, k, None]
        y[:, :, k] = (2 if diag else 1) * (Cf * x).sum(-1).real
    if D is not None:
        y += np.asarray(D, np.float64)[:, None] * u
    return y


def _kernels(K, bidirectional):
    K = np.asarray(K, np.float64)
    return (K[0], K[1]) if bidirectional else (K[0] if K.ndim == 3 else K, None)


def fftconv(u, K, D=None, bidirectional=False):
    """y = irfft(rfft(u, n) rfft(k, n), n)[:L] + D u with n = L + L_k (the reference's size);
    bidirectional: k = pad(k0) + pad(flip(k1)) at the end of the buffer."""
    u = np.asarray(u, np.float64)
    L = u.shape[-1]
    k0, k1 = _kernels(K, bidirectional)
    Lk = k0.shape[-1]
    n = L + Lk
    kk = np.zeros((k0.shape[0], n))
    kk[:, :Lk] = k0
    if k1 is not None:
        kk[:, n - Lk:] += k1[:, ::-1]
    y = np.fft.irfft(np.fft.rfft(u, n) * np.fft.rfft(kk, n), n)[..., :L]
    if D is not None:
        y = y + np.asarray(D, np.float64)[:, None] * u
    return y


def fftconv_direct(u, K, D=None, bidirectional=False):
    """Explicit sums: y[t] = sum_{s<=t} k0[s] u[t-s] + sum_{m>=0} k1[m] u[t+m+1] + D u[t]."""
    u = np.asarray(u, np.float64)
    Bn, H, L = u.shape
    k0, k1 = _kernels(K, bidirectional)
    y = np.zeros((Bn, H, L))
    for b in range(Bn):
        for h in range(H):
            y[b, h] = np.convolve(u[b, h], k0[h])[:L]
            if k1 is not None:
                # sum_m k1[m] u[t+m+1]: correlate u[1:] with k1
                c = np.convolve(u[b, h, ::-1], k1[h])[:L][::-1]  # c[t] = sum_m k1[m] u[t+m]
                y[b, h, :L - 1] += c[1:]
    if D is not None:
        y += np.asarray(D, np.float64)[:, None] * u
    return y


def fftconv_backward(u, K, D, dy, bidirectional=False):
    """(du, dK, dD) of fftconv_direct by explicit adjoint sums (dD None when D is None)."""
    u, dy = np.asarray(u, np.float64), np.asarray(dy, np.float64)
    Bn, H, L = u.shape
    k0, k1 = _kernels(K, bidirectional)
    Lk = k0.shape[-1]
    du = np.zeros_like(u)
    dk0 = np.zeros((H, Lk))
    dk1 = np.zeros((H, Lk)) if k1 is not None else None
    for b in range(Bn):
        for h in range(H):
            g, x = dy[b, h], u[b, h]
            # y[t] = sum_s k0[s] x[t-s]: du[j] = sum_t g[t] k0[t-j]; dk0[s] = sum_t g[t] x[t-s]
            du[b, h] += np.correlate(g, k0[h], "full")[Lk - 1:Lk - 1 + L] if Lk else 0
            full = np.correlate(g, x, "full")  # index L-1+s -> sum_t g[t+s] x[t]... (lag s)
            for s in range(min(Lk, L)):
                dk0[h, s] += full[L - 1 + s]
            if k1 is not None:
                # y[t] += sum_m k1[m] x[t+m+1]: du[j] += sum_m k1[m] g[j-m-1]; dk1[m] += sum_t g[t] x[t+m+1]
                c = np.convolve(g, k1[h])  # c[i] = sum_m k1[m] g[i-m]
                du[b, h, 1:] += c[:L - 1]
                for m in range(min(Lk, L - 1)):
                    dk1[h, m] += full[L - 1 - (m + 1)]
    if D is not None:
        du += np.asarray(D, np.float64)[:, None] * dy
        dD = (u * dy).sum((0, 2))
    else:
        dD = None
    dK = np.stack([dk0, dk1]) if k1 is not None else dk0
    return du, dK, dD


def rtf_kernel(a, b, h0, L):
    """RTF kernel (notes §8): n = L rounded up to even, k = irfft(rfft([0, b], n)/rfft([1, a], n)
    + h0, n)[:L]. a, b (H, N), h0 (H,) -> (H, L)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    H, N = a.shape
    n = L + (L % 2)
    num = np.fft.rfft(np.concatenate([np.zeros((H, 1)), b], -1), n)
    den = np.fft.rfft(np.concatenate([np.ones((H, 1)), a], -1), n)
    return np.fft.irfft(num / den + np.asarray(h0, np.float64)[:, None], n)[:, :L]


# --- initialisations used by tests and benchmarks (state-spaces/s4 dplr.py, notes §9.5) ---

def hippo_legs(N, H=1):
    """HiPPO-LegS in NPLR form, diagonalised: (Lambda (H, N), P (1, H, N), B (H, N)) for the
    N stored states of a 2N-dim LegS system (eigenvalues with Im >= 0 kept... the half with
    Im Lambda <= 0 as in the reference)."""
    n2 = 2 * N
    q = np.sqrt(1 + 2 * np.arange(n2))
    A = -np.tril(np.outer(q, q), -1) - np.diag(np.arange(n2) + 1.0)
    Pv = np.sqrt(np.arange(n2) + 0.5)
    Bv = np.sqrt(2 * np.arange(n2) + 1.0)
    S = A + np.outer(Pv, Pv)          # normal: -1/2 I + skew
    S_skew = (S - S.T) / 2
    lam_im, V = np.linalg.eigh(-1j * S_skew)
    order = np.argsort(lam_im)
    lam_im, V = lam_im[order][:N], V[:, order][:, :N]  # Im Lambda <= 0 half
    Lambda = -0.5 + 1j * lam_im
    P = V.conj().T @ Pv
    B = V.conj().T @ Bv
    tile = lambda a: np.tile(a[None], (H, 1))
    return tile(Lambda), tile(P)[None], tile(B)


def s4d_lin(N, H=1):
    """S4D-Lin: Lambda_n = -1/2 + i pi n, B = 1."""
    Lambda = -0.5 + 1j * np.pi * np.arange(N)
    return np.tile(Lambda, (H, 1)), np.ones((H, N), _c)


def random_dplr(rng, H, N, rank=1):
    """A random stable DPLR system: Re Lambda in [-1, -0.1], Im Lambda in [-5, 5]."""
    Lambda = -rng.uniform(0.1, 1.0, (H, N)) + 1j * rng.uniform(-5, 5, (H, N))
    P = (rng.standard_normal((rank, H, N)) + 1j * rng.standard_normal((rank, H, N))) * 0.3
    B = rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N))
    return Lambda, P, B
