"""fastcore.torch: autograd wrappers (torch.autograd.gradcheck in float64, agreement with the NumPy
paths), the Tiger optimizer and the IG gradient adapter. Skipped only when torch is missing."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fastcore  # noqa: E402
import fastcore.torch as ft  # noqa: E402
from fastcore import activations as A  # noqa: E402


def test_import_fastcore_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, fastcore; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "sparsemax", "entmax15"])
@pytest.mark.parametrize("dim", [-1, 0])
def test_map_gradcheck_and_agreement(rng, name, dim):
    x = torch.from_numpy(rng.standard_normal((4, 6))).requires_grad_(True)
    fn = getattr(ft, name)
    assert torch.autograd.gradcheck(lambda v: fn(v, dim=dim, scale=0.7), (x,), eps=1e-6, atol=1e-6)
    y = fn(x, dim=dim)
    np.testing.assert_array_equal(y.detach().numpy(), getattr(A, name)(x.detach().numpy(), axis=dim))


def test_entmax_bisect_gradcheck(rng):
    x = torch.from_numpy(rng.standard_normal((3, 5))).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: ft.entmax_bisect(v, 1.8), (x,), eps=1e-6, atol=1e-6)


def test_masked_softmax_gradient_is_zero_at_masked_entries(rng):
    x = torch.from_numpy(rng.standard_normal((3, 5))).requires_grad_(True)
    mask = torch.from_numpy(rng.random((3, 5)) > 0.4)
    mask[1] = False
    y = ft.softmax(x, mask=mask)
    (y * torch.arange(5.0)).sum().backward()
    assert torch.all(x.grad[~mask] == 0) and torch.all(torch.isfinite(x.grad))


def test_matches_torch_softmax_in_float32(rng):
    x = torch.from_numpy(rng.standard_normal((8, 100)).astype(np.float32))
    torch.testing.assert_close(ft.softmax(x), torch.softmax(x, -1), rtol=2e-6, atol=2e-6)
    torch.testing.assert_close(ft.log_softmax(x), torch.log_softmax(x, -1), rtol=2e-6, atol=5e-6)


def test_tiger_optimizer_matches_tiger_step(rng):
    w0 = rng.standard_normal((5, 3))
    b0 = rng.standard_normal(3)
    model_w = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    model_b = torch.nn.Parameter(torch.from_numpy(b0.copy()))
    opt = ft.Tiger([model_w, model_b], lr=0.01, grad_accum_steps=2)
    params = [w0.copy(), b0.copy()]
    moms = [np.zeros_like(w0), np.zeros_like(b0)]
    xs = torch.from_numpy(rng.standard_normal((6, 8, 5)))
    for t in range(6):
        opt.zero_grad()
        loss = ((xs[t] @ model_w + model_b) ** 2).mean()
        loss.backward()
        grads = [model_w.grad.numpy().copy(), model_b.grad.numpy().copy()]
        opt.step()
        fastcore.tiger_step(params, grads, moms, step=t, lr=0.01, grad_accum_steps=2)
        np.testing.assert_array_equal(model_w.detach().numpy(), params[0])
        np.testing.assert_array_equal(model_b.detach().numpy(), params[1])
    state = opt.state_dict()
    opt2 = ft.Tiger([model_w, model_b], lr=0.01, grad_accum_steps=2)
    opt2.load_state_dict(state)
    assert opt2.param_groups[0]["step"] == 6
    assert torch.equal(opt2.state[model_w]["momentum"], opt.state[model_w]["momentum"])


def test_tiger_optimizer_closure_and_training_reduces_loss(rng):
    torch.manual_seed(0)
    x = torch.from_numpy(rng.standard_normal((64, 4)).astype(np.float32))
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.3
    model = torch.nn.Linear(4, 1)
    opt = ft.Tiger(model.parameters(), lr=0.02, weight_decay=0.0, rms_mode="none")

    def closure():
        opt.zero_grad()
        loss = ((model(x)[:, 0] - y) ** 2).mean()
        loss.backward()
        return loss

    first = float(closure().detach())
    for _ in range(200):
        opt.step(closure)
    assert float(closure().detach()) < 0.05 * first


def test_ig_grad_fn_gives_model_gradients(rng):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).double()
    grad_fn = ft.ig_grad_fn(model, output="softmax")
    points = rng.standard_normal((4, 6))
    target = np.array([0, 2, 1, 2])
    grads = grad_fn(points, target)
    assert isinstance(grads, np.ndarray) and grads.shape == points.shape
    h = 1e-6
    for i in range(4):
        for j in range(6):
            e = np.zeros(6)
            e[j] = h
            f = lambda v: torch.softmax(model(torch.from_numpy(v[None])), -1)[0, target[i]].item()
            numeric = (f(points[i] + e) - f(points[i] - e)) / (2 * h)
            assert grads[i, j] == pytest.approx(numeric, abs=1e-8)
    values = grad_fn.forward_fn(points, target)
    assert values.shape == (4,)


def test_monarch_multiply_gradcheck_and_layer(rng):
    x = torch.from_numpy(rng.standard_normal((3, 12))).requires_grad_(True)
    w1 = torch.from_numpy(rng.standard_normal((3, 4, 4))).requires_grad_(True)
    w2 = torch.from_numpy(rng.standard_normal((4, 2, 3))).requires_grad_(True)
    assert torch.autograd.gradcheck(ft.monarch_multiply, (x, w1, w2), eps=1e-6, atol=1e-6)
    layer = ft.MonarchLinear(10, 7, nblocks=4, dtype=torch.float64)
    xin = torch.from_numpy(rng.standard_normal((5, 10)))
    dense = fastcore.monarch.to_dense(layer.w1.detach().numpy(), layer.w2.detach().numpy())[:7, :10]
    torch.testing.assert_close(layer(xin), xin @ torch.from_numpy(dense).T + layer.bias)
    layer(xin).sum().backward()
    assert layer.w1.grad is not None and layer.w2.grad is not None
    W = torch.from_numpy(rng.standard_normal((7, 10)))
    approx = ft.MonarchLinear.from_dense(W, torch.zeros(7, dtype=torch.float64), nblocks=1)
    torch.testing.assert_close(approx(xin), xin @ W.T)          # one block: exact


def test_s4_wrappers(rng):
    u = torch.from_numpy(rng.standard_normal((2, 3, 17))).requires_grad_(True)
    K = torch.from_numpy(rng.standard_normal((3, 17))).requires_grad_(True)
    D = torch.from_numpy(rng.standard_normal(3)).requires_grad_(True)
    assert torch.autograd.gradcheck(ft.fftconv, (u, K, D), eps=1e-6, atol=1e-6)
    y = ft.fftconv(u, K, D)
    want = fastcore.s4.fftconv(u.detach().numpy(), K.detach().numpy(), D.detach().numpy())
    np.testing.assert_allclose(y.detach().numpy(), want, atol=1e-12)
    v = torch.from_numpy(rng.standard_normal((2, 4)) + 1j * rng.standard_normal((2, 4))).requires_grad_(True)
    w = torch.from_numpy(-np.abs(rng.standard_normal((2, 4))) + 1j * rng.standard_normal((2, 4))).requires_grad_(True)
    z = torch.from_numpy(np.exp(1j * np.linspace(0.1, 3.0, 5)))
    assert torch.autograd.gradcheck(lambda a, b: ft.cauchy(a, z, b), (v, w), eps=1e-6, atol=1e-6)
    Lam = torch.from_numpy(-0.5 + 1j * np.arange(4.0)).reshape(1, 4).repeat(3, 1)
    B = torch.ones(3, 4, dtype=torch.complex128)
    C = torch.from_numpy(rng.standard_normal((3, 4)) + 0j)
    dt = torch.full((3,), 0.1, dtype=torch.float64)
    k = ft.kernel_diag(Lam, B, C, dt, 16)
    assert isinstance(k, torch.Tensor) and k.shape == (3, 16)


def test_fftconv_zero_d_d_gradcheck(rng):
    """A 0-d D tensor (one skip weight for every channel) gets a 0-d gradient of its dtype (the
    forward refused it; the backward returned an (H,) gradient)."""
    u = torch.from_numpy(rng.standard_normal((2, 3, 11))).requires_grad_(True)
    K = torch.from_numpy(rng.standard_normal((3, 6))).requires_grad_(True)
    D = torch.tensor(float(rng.standard_normal()), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ft.fftconv, (u, K, D), eps=1e-6, atol=1e-6)
    ft.fftconv(u, K, D).sum().backward()
    assert D.grad.shape == () and D.grad.dtype == torch.float64
    u32, K32 = u.detach().float(), K.detach().float()
    D32 = torch.tensor(0.5, requires_grad=True)
    ft.fftconv(u32, K32, D32).sum().backward()
    assert D32.grad.shape == () and D32.grad.dtype == torch.float32
    torch.testing.assert_close(D32.grad, u32.sum(), rtol=1e-5, atol=1e-5)


def test_vandermonde_gradcheck(rng):
    v = torch.from_numpy(rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3))).requires_grad_(True)
    x = torch.from_numpy(-np.abs(rng.standard_normal((2, 3))) * 0.1 + 1j * rng.standard_normal((2, 3))).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: ft.vandermonde(a, b, 9), (v, x), eps=1e-6, atol=1e-6)
    assert torch.autograd.gradcheck(lambda a, b: ft.vandermonde(a, b, 9, conj=False), (v, x), eps=1e-6, atol=1e-6)


def test_kernel_dplr_gradcheck(rng):
    # rank-1 DPLR with two output channels and per-channel dt: every input differentiable; P given
    # (H, N) for rank 1; an even L exercises the Nyquist bin, an odd one the mirrored bins only.
    from fastcore.reference import s4 as R

    H, N = 2, 3
    lam, P, B = R.random_dplr(rng, H, N, 1)
    Lam = torch.from_numpy(lam).requires_grad_(True)
    Pt = torch.from_numpy(P[0]).requires_grad_(True)
    Bt = torch.from_numpy(B).requires_grad_(True)
    Ct = torch.from_numpy(rng.standard_normal((2, H, N)) + 1j * rng.standard_normal((2, H, N))).requires_grad_(True)
    dt = torch.from_numpy(np.array([1e-2, 1e-1])).requires_grad_(True)
    for L in (8, 7):
        assert torch.autograd.gradcheck(lambda a, p, b, c, d: ft.kernel_dplr(a, p, b, c, d, L),
                                        (Lam, Pt, Bt, Ct, dt), eps=1e-7, atol=1e-6)
    # rank 0 (P=None: no gradient slot for it) with a constant float dt
    assert torch.autograd.gradcheck(lambda a, b, c: ft.kernel_dplr(a, None, b, c, 0.05, 8), (Lam, Bt, Ct),
                                    eps=1e-7, atol=1e-6)


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_kernel_diag_gradcheck(rng, method):
    # S4D-Lin-like eigenvalues, random B and (2 output channels of) C, per-channel dt: every input
    # differentiable, complex ones in PyTorch's convention (gradcheck checks that convention).
    H, N = 2, 3
    lam = -0.5 - 0.2 * np.abs(rng.standard_normal((H, N))) + 1j * np.pi * (np.arange(N) + rng.random((H, N)))
    Lam = torch.from_numpy(lam).requires_grad_(True)
    B = torch.from_numpy(rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N))).requires_grad_(True)
    C = torch.from_numpy(rng.standard_normal((2, H, N)) + 1j * rng.standard_normal((2, H, N))).requires_grad_(True)
    dt = torch.from_numpy(np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), H))).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b, c, d: ft.kernel_diag(a, b, c, d, 11, method), (Lam, B, C, dt),
                                    eps=1e-7, atol=1e-6)
    # a Python-float dt is a constant; a 0-d tensor dt gets a 0-d gradient
    assert torch.autograd.gradcheck(lambda a, c: ft.kernel_diag(a, B.detach(), c, 0.05, 7, method), (Lam, C),
                                    eps=1e-7, atol=1e-6)
    d0 = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
    ft.kernel_diag(Lam, B, C, d0, 7, method).sum().backward()
    assert d0.grad is not None and d0.grad.shape == ()


# --- found by fuzzing the adapters ----------------------------------------------------------------

def test_conjugated_upstream_gradients_are_resolved(rng):
    """The gradient of y.conj() reaches backward as a lazily conjugated tensor (DLPack ignores the
    bit): it is resolved, and the gradients equal plain-torch sums."""
    v = torch.from_numpy(rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3))).requires_grad_(True)
    w = torch.from_numpy(-rng.random((2, 3)) - 0.1 + 1j * rng.standard_normal((2, 3))).requires_grad_(True)
    z = torch.exp(1j * torch.linspace(0.1, 3.0, 4, dtype=torch.float64))
    c = torch.from_numpy(rng.standard_normal(4) + 0j)
    (ft.cauchy(v, z, w).conj() @ c).real.sum().backward()
    v2, w2 = v.detach().clone().requires_grad_(True), w.detach().clone().requires_grad_(True)
    plain = (v2.conj()[..., None] / (z - w2.conj()[..., None]) + v2[..., None] / (z - w2[..., None])).sum(-2)
    (plain.conj() @ c).real.sum().backward()
    torch.testing.assert_close(v.grad, v2.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(w.grad, w2.grad, rtol=1e-12, atol=1e-12)
    x = torch.from_numpy(-rng.random((2, 3)) * 0.1 + 1j * rng.standard_normal((2, 3))).requires_grad_(True)
    (ft.vandermonde(v, x, 4, conj=False).conj() @ c).real.sum().backward()  # raised before
    assert x.grad is not None and torch.isfinite(torch.view_as_real(x.grad)).all()


def test_second_derivatives_raise_instead_of_returning_zeros(rng):
    """The backward runs NumPy kernels (no graph): create_graph through it must fail loudly
    (a gradient penalty silently came out wrong, a Hessian all zeros)."""
    x = torch.from_numpy(rng.standard_normal(5)).requires_grad_(True)
    w = torch.from_numpy(rng.standard_normal(5)).requires_grad_(True)
    c = torch.from_numpy(rng.standard_normal(5))
    (g,) = torch.autograd.grad((ft.softmax(x * w) * c).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="second derivatives .* are not supported"):
        torch.autograd.grad(g.pow(2).sum(), w)
    with pytest.raises(RuntimeError, match="second derivatives .* are not supported"):
        torch.autograd.functional.hessian(lambda t: (ft.softmax(t) * c).sum(), x.detach())
    # first derivatives with create_graph=True stay usable where nothing differentiates them again
    (g2,) = torch.autograd.grad((ft.softmax(x) * c).sum(), x, create_graph=True)
    torch.testing.assert_close(g2.detach(), torch.autograd.grad((torch.softmax(x, 0) * c).sum(), x)[0])
    monarch_w = [torch.from_numpy(rng.standard_normal((2, 2, 2))).requires_grad_(True) for _ in range(2)]
    xm = torch.from_numpy(rng.standard_normal((3, 4))).requires_grad_(True)
    (gm,) = torch.autograd.grad(ft.monarch_multiply(xm, *monarch_w).sum(), xm, create_graph=True)
    with pytest.raises(RuntimeError, match="second derivatives .* are not supported"):
        torch.autograd.grad(gm.pow(2).sum(), monarch_w[0])


def test_tiger_step_bumps_the_version_counter():
    """A graph that saved a parameter must not silently use its updated value (torch.optim's
    in-place updates raise there; the DLPack write was invisible to autograd)."""
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    opt = ft.Tiger([p], lr=0.5, weight_decay=0.0, rms_mode="none")
    y = (p * p).sum()
    p.grad = torch.ones(2, dtype=torch.float64)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        torch.autograd.grad(y, p)


def test_tiger_non_contiguous_parameters_match_contiguous_ones(rng):
    """channels_last conv weights and transposed parameters are updated like contiguous ones
    (through a contiguous copy written back), including row RMS along the logical last axis."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3).double()
    ref_conv = torch.nn.Conv2d(3, 4, 3).double()
    ref_conv.load_state_dict(conv.state_dict())
    conv = conv.to(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    base = torch.from_numpy(rng.standard_normal((5, 6)))
    t_param = torch.nn.Parameter(base.clone().t())  # transposed view, (6, 5)
    ref_t = torch.nn.Parameter(base.clone().t().contiguous())
    opt = ft.Tiger(list(conv.parameters()) + [t_param], lr=0.01, rms_mode="row")
    ref_opt = ft.Tiger(list(ref_conv.parameters()) + [ref_t], lr=0.01, rms_mode="row")
    data = torch.from_numpy(rng.standard_normal((3, 2, 3, 8, 8)))
    for step in range(3):
        for model, tp, o in ((conv, t_param, opt), (ref_conv, ref_t, ref_opt)):
            o.zero_grad()
            inputs = data[step].to(memory_format=torch.channels_last) if model is conv else data[step]
            (model(inputs).pow(2).sum() + (tp * tp.detach().flip(0)).sum()).backward()
            o.step()
    assert not conv.weight.is_contiguous()  # the layout is kept
    torch.testing.assert_close(conv.weight, ref_conv.weight, rtol=0, atol=0)
    torch.testing.assert_close(conv.bias, ref_conv.bias, rtol=0, atol=0)
    torch.testing.assert_close(t_param, ref_t, rtol=0, atol=0)


def test_tiger_validates_groups_and_refuses_sparse_gradients():
    p = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(ValueError, match="lr"):
        ft.Tiger([p], lr=-1.0)
    opt = ft.Tiger([p])
    with pytest.raises(ValueError, match="beta"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(2))], "beta": 1.5})
    emb = torch.nn.Embedding(10, 3, sparse=True)
    opt = ft.Tiger(emb.parameters())
    emb(torch.tensor([1, 2])).sum().backward()
    before = emb.weight.detach().clone()
    with pytest.raises(TypeError, match="sparse gradients are not supported"):
        opt.step()
    assert torch.equal(emb.weight.detach(), before)


def test_ig_grad_fn_scalar_target_applies_to_every_row(rng):
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 3).double()
    grad_fn = ft.ig_grad_fn(model)
    points = rng.standard_normal((4, 6))
    want = np.broadcast_to(model.weight[2].detach().numpy(), (4, 6))
    for target in (2, np.int64(2), np.array(2), np.full(4, 2)):
        np.testing.assert_allclose(grad_fn(points, target), want, rtol=1e-15)
        assert grad_fn.forward_fn(points, target).shape == (4,)
    with pytest.raises(ValueError, match=r"target: expected a class index or one per row \(4,\)"):
        grad_fn(points, np.array([0, 1]))


def test_constants_that_require_grad_and_numpy_integer_dims(rng):
    x = torch.from_numpy(rng.standard_normal((3, 4))).requires_grad_(True)
    scale = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    with pytest.raises(TypeError, match=r"scale: a tensor that requires grad is not differentiable here"):
        ft.softmax(x, scale=scale)
    torch.testing.assert_close(ft.softmax(x, dim=np.int64(0)), torch.softmax(x, 0), rtol=1e-14, atol=0)
    with pytest.raises(TypeError, match="dim: expected an integer, got bool"):
        ft.softmax(x, dim=True)
    with pytest.raises(TypeError, match="w1: expected a torch.Tensor, got ndarray"):
        ft.monarch_multiply(torch.ones(2, 4), np.ones((2, 2, 2)), torch.ones(2, 2, 2))


def test_kernel_backward_propagates_non_finite_upstream_gradients(rng):
    """NaN/Inf in the upstream gradient flow into the parameter gradients (a loss scaler's
    overflow check relies on that), as in fftconv and torch; they were refused with ValueError."""
    H, N = 2, 3
    Lam = torch.from_numpy(-0.5 + 1j * np.arange(1.0, N + 1) * np.ones((H, 1))).requires_grad_(True)
    B = torch.ones(H, N, dtype=torch.complex128, requires_grad=True)
    C = torch.from_numpy(rng.standard_normal((H, N)) + 0j).requires_grad_(True)
    k = ft.kernel_diag(Lam, B, C, 0.1, 8)
    k.backward(torch.full_like(k, float("inf")))
    assert not torch.isfinite(torch.view_as_real(Lam.grad)).all()


# --- found in review: the adapters against the NumPy API -----------------------------------------

def test_fftconv_takes_every_d_the_numpy_api_takes(rng):
    """D as in fastcore.s4.fftconv: a Python float (a constant, cast to u's dtype) was refused with
    TypeError; a 0-d tensor is broadcast to the channels and gets a 0-d gradient."""
    u = torch.from_numpy(rng.standard_normal((2, 3, 9))).requires_grad_(True)
    K = torch.from_numpy(rng.standard_normal((3, 9))).requires_grad_(True)
    un, Kn = u.detach().numpy(), K.detach().numpy()
    for D in (0.7, 2, np.float32(0.7), np.float64(-1.5)):
        y = ft.fftconv(u, K, D)
        np.testing.assert_allclose(y.detach().numpy(), fastcore.s4.fftconv(un, Kn, D), rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(lambda a, b: ft.fftconv(a, b, 0.7), (u, K), eps=1e-6, atol=1e-6)
    d0 = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ft.fftconv, (u, K, d0), eps=1e-6, atol=1e-6)
    ft.fftconv(u, K, d0).sum().backward()
    assert d0.grad.shape == ()
    np.testing.assert_allclose(d0.grad.item(), un.sum(), rtol=1e-12)
    dH = torch.full((3,), 0.7, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(ft.fftconv(u, K, d0), ft.fftconv(u, K, dH), rtol=0, atol=0)
    assert torch.autograd.gradcheck(ft.fftconv, (u, K, dH), eps=1e-6, atol=1e-6)
    assert torch.autograd.gradcheck(lambda a, b: ft.fftconv(a, b, None), (u, K), eps=1e-6, atol=1e-6)
    u32 = torch.from_numpy(rng.standard_normal((1, 3, 5)).astype(np.float32))
    assert ft.fftconv(u32, K.detach().float(), 0.5).dtype == torch.float32  # a number takes u's dtype
    for bad, err, match in ((True, TypeError, "D: expected a real number, got bool"),
                            (1 + 2j, TypeError, "D: expected a torch.Tensor, a real number or None, got complex"),
                            ("0.5", TypeError, "D: expected a torch.Tensor, a real number or None, got str"),
                            (np.ones(3), TypeError, "D: expected a torch.Tensor, a real number or None, got ndarray"),
                            (float("nan"), ValueError, "D: expected a finite number, got nan")):
        with pytest.raises(err, match=match):
            ft.fftconv(u, K, bad)


def test_fftconv_bidirectional_must_be_a_bool(rng):
    """bool(bidirectional) in the adapter turned "no" into True (the NumPy API refuses it)."""
    u = torch.from_numpy(rng.standard_normal((1, 2, 6)))
    K2 = torch.from_numpy(rng.standard_normal((2, 2, 6)))
    with pytest.raises(TypeError, match="bidirectional: expected a bool, got str"):
        ft.fftconv(u, K2, bidirectional="no")
    torch.testing.assert_close(ft.fftconv(u, K2, bidirectional=np.bool_(True)),
                               torch.from_numpy(fastcore.s4.fftconv(u.numpy(), K2.numpy(), bidirectional=True)))


def test_lengths_and_methods_are_checked_not_coerced(rng):
    """int(L) truncated 9.7 to 9 and str(method) accepted anything stringable, where the NumPy API
    raises; they now reach fastcore.s4's checks unconverted."""
    v = torch.from_numpy(rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3)))
    x = torch.from_numpy(-rng.random((2, 3)) * 0.1 + 1j * rng.standard_normal((2, 3)))
    Lam = torch.from_numpy(-0.5 + 1j * np.arange(1.0, 4.0) * np.ones((2, 1)))
    B = torch.ones(2, 3, dtype=torch.complex128)
    for call in (lambda L: ft.vandermonde(v, x, L), lambda L: ft.kernel_diag(Lam, B, B, 0.1, L),
                 lambda L: ft.kernel_dplr(Lam, None, B, B, 0.1, L)):
        for L in (9.7, "8", True):
            with pytest.raises(TypeError, match="L: expected an integer"):
                call(L)
        assert call(np.int64(8)).shape[-1] == 8
    with pytest.raises(TypeError, match="method: expected a string"):
        ft.kernel_diag(Lam, B, B, 0.1, 8, method=None)


def _unsupported_tensors(t):
    """(kind, tensor) pairs torch builds without special hardware that DLPack cannot export or
    fastcore cannot run on: the meta device, sparse/MKL-DNN layouts, nested and quantized tensors."""
    import warnings

    with warnings.catch_warnings():  # quantized / nested / sparse CSR: prototype or deprecated APIs
        warnings.simplefilter("ignore")
        kinds = [("meta", t.to("meta")), ("sparse_coo", t.to_sparse())]
        if t.dim() == 2:
            kinds.append(("sparse_csr", t.to_sparse_csr()))
        if t.dim() >= 1:
            kinds.append(("nested", torch.nested.nested_tensor(list(t.unbind(0)))))
        if t.dim() >= 2:
            kinds.append(("jagged", torch.nested.nested_tensor(list(t.unbind(0)), layout=torch.jagged)))
        if t.dtype == torch.float32 and t.dim() >= 1:
            kinds.append(("quantized", torch.quantize_per_tensor(t, 0.1, 0, torch.qint8)))
            if torch.backends.mkldnn.is_available():
                kinds.append(("mkldnn", t.to_mkldnn()))
    return kinds


def _unsupported_cases():
    r = np.random.default_rng(7)
    f32 = lambda *s: torch.from_numpy(r.standard_normal(s).astype(np.float32))  # noqa: E731
    c128 = lambda *s: torch.from_numpy(r.standard_normal(s) + 1j * r.standard_normal(s))  # noqa: E731
    lam = torch.from_numpy(-0.5 + 1j * np.arange(1.0, 4.0) * np.ones((2, 1)))
    dt0 = torch.tensor(0.1, dtype=torch.float64)
    return {
        "softmax": (lambda x, mask: ft.softmax(x, mask=mask),
                    dict(x=f32(3, 4), mask=torch.ones(3, 4, dtype=torch.bool))),
        "entmax_bisect": (lambda x: ft.entmax_bisect(x), dict(x=f32(3, 4))),
        "monarch_multiply": (ft.monarch_multiply, dict(x=f32(3, 4), w1=f32(2, 2, 2), w2=f32(2, 2, 2))),
        "MonarchLinear": (lambda x: ft.MonarchLinear(4, 4, 2)(x), dict(x=f32(3, 4))),
        "from_dense": (lambda weight, bias: ft.MonarchLinear.from_dense(weight, bias, 2),
                       dict(weight=f32(4, 4), bias=f32(4))),
        "cauchy": (ft.cauchy, dict(v=c128(2, 3), z=c128(5), w=c128(2, 3))),
        "vandermonde": (lambda v, x: ft.vandermonde(v, x, 5), dict(v=c128(2, 3), x=c128(2, 3))),
        "kernel_diag": (lambda Lambda, B, C, dt: ft.kernel_diag(Lambda, B, C, dt, 8),
                        dict(Lambda=lam, B=c128(2, 3), C=c128(2, 3), dt=dt0)),
        "kernel_dplr": (lambda Lambda, P, B, Ct, dt: ft.kernel_dplr(Lambda, P, B, Ct, dt, 8),
                        dict(Lambda=lam, P=c128(2, 3), B=c128(2, 3), Ct=c128(2, 3), dt=dt0)),
        "fftconv": (ft.fftconv, dict(u=f32(2, 3, 8), K=f32(3, 8), D=f32(3))),
        "fftconv_0d_D": (ft.fftconv, dict(u=f32(2, 3, 8), D=torch.tensor(0.5), K=f32(3, 8))),
    }


@pytest.mark.parametrize("case", sorted(_unsupported_cases()))
def test_unsupported_tensors_get_a_clear_error_naming_the_argument(case):
    """A meta tensor gave torch's raw 'Unknown device type meta for Dlpack'; sparse, nested,
    quantized and MKL-DNN tensors torch's internal DLPack messages (or, where torch ran an op on
    them first, RuntimeErrors such as 'NestedTensorImpl doesn't support sizes')."""
    fn, args = _unsupported_cases()[case]
    fn(**args)  # the good arguments work
    for name, good in args.items():
        for kind, bad in _unsupported_tensors(good):
            with pytest.raises((TypeError, ValueError), match=rf"^{name}: expected ") as info:
                fn(**{**args, name: bad})
            msg = str(info.value)
            if kind == "meta":
                assert info.type is ValueError and "the CPU" in msg and "'meta'" in msg, msg
            elif kind == "quantized":
                assert info.type is TypeError and f"{name}.dequantize()" in msg, msg
            else:
                assert info.type is TypeError and "dense (strided)" in msg, msg


def test_supported_devices_are_named_by_what_this_build_has():
    from fastcore import _backend

    with pytest.raises(ValueError) as info:
        ft.softmax(torch.ones(2, device="meta"))
    if _backend._cuda_module()[0] is None:
        assert "CPU (this build of fastcore has no CUDA module)" in str(info.value)
    else:
        assert "the CPU or a CUDA GPU" in str(info.value)


def test_tiger_checks_every_group_before_updating_any():
    """A bad parameter (meta, MKL-DNN, quantized), a sparse gradient or an option an lr scheduler
    wrote in a later group raised only after the earlier groups were updated (and, for the meta
    device, with torch's raw DLPack error)."""
    good = torch.nn.Parameter(torch.ones(3))
    mkldnn = torch.nn.Parameter(torch.ones(2, 2).to_mkldnn())
    sparse = torch.nn.Parameter(torch.ones(2, 2).to_sparse())
    meta = torch.nn.Parameter(torch.ones(2, device="meta"))
    for bad, grad, match in ((meta, torch.ones(2, device="meta"),
                              r"param_groups\[1\]\['params'\]\[0\]: expected a tensor on the CPU"),
                             (mkldnn, torch.ones(2, 2).to_mkldnn(),
                              r"param_groups\[1\]\['params'\]\[0\]: expected a dense \(strided\) tensor"),
                             (sparse, torch.ones(2, 2).to_sparse(),
                              r"param_groups\[1\]\['params'\]\[0\]\.grad: sparse gradients are not supported")):
        opt = ft.Tiger([good], lr=0.1)
        opt.add_param_group({"params": [bad]})
        good.grad, bad.grad = torch.ones(3), grad
        with pytest.raises((TypeError, ValueError), match=match):
            opt.step()
        assert torch.equal(good.detach(), torch.ones(3)) and not opt.state
        assert [g["step"] for g in opt.param_groups] == [0, 0]
    other = torch.nn.Parameter(torch.ones(2))
    opt = ft.Tiger([good], lr=0.1)
    opt.add_param_group({"params": [other]})
    good.grad, other.grad = torch.ones(3), torch.ones(2)
    opt.param_groups[1]["lr"] = -1.0  # as a buggy scheduler might
    with pytest.raises(ValueError, match="lr: expected a value >= 0"):
        opt.step()
    assert torch.equal(good.detach(), torch.ones(3)) and opt.param_groups[0]["step"] == 0


def test_ig_grad_fn_refuses_meta_models_and_devices(rng):
    with pytest.raises(ValueError, match=r"module: has parameters or buffers on the meta device"):
        ft.ig_grad_fn(torch.nn.Linear(4, 2, device="meta"))
    with pytest.raises(ValueError, match=r"device: expected a CPU or CUDA device for the model, got 'meta'"):
        ft.ig_grad_fn(torch.nn.Linear(4, 2), device="meta")
    with pytest.raises(ValueError, match=r"device: expected a torch device such as 'cpu' or 'cuda', got 'gpu0'"):
        ft.ig_grad_fn(torch.nn.Linear(4, 2), device="gpu0")
    with pytest.raises(TypeError, match=r"module: expected a torch.nn.Module \(or a callable on tensors\), got int"):
        ft.ig_grad_fn(3)
    model = torch.nn.Linear(4, 2).double()
    g = ft.ig_grad_fn(model, device=torch.device("cpu"))(rng.standard_normal((3, 4)), 1)
    np.testing.assert_array_equal(g, np.broadcast_to(model.weight[1].detach().numpy(), (3, 4)))


class _Constant(torch.nn.Module):
    """Ignores its input: a constant (no parameters) or only parameters reach the output."""

    def __init__(self, with_parameter: bool):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.arange(3.0, dtype=torch.float64)) if with_parameter else None

    def forward(self, x):
        if self.bias is None:
            return torch.ones(x.shape[0], 3, dtype=x.dtype)
        return self.bias.expand(x.shape[0], 3)


@pytest.mark.parametrize("with_parameter", [False, True])
@pytest.mark.parametrize("output", ["logit", "softmax"])
def test_ig_grad_fn_gives_zeros_for_a_model_that_ignores_its_input(rng, with_parameter, output):
    """autograd raised 'element 0 of tensors does not require grad' (no parameter) or '... appears
    to not have been used in the graph' (parameters only); the gradient is zero, and integrated
    gradients of a constant model are zero."""
    grad_fn = ft.ig_grad_fn(_Constant(with_parameter), output=output)
    points = rng.standard_normal((4, 5))
    grads = grad_fn(points, 1)
    assert isinstance(grads, np.ndarray) and grads.dtype == np.float64 and grads.shape == (4, 5)
    assert not grads.any()
    res = fastcore.ig.integrated_gradients(grad_fn, points, target=1, n_steps=8, return_delta=True,
                                           forward_fn=grad_fn.forward_fn)
    assert not np.asarray(res.attributions).any() and np.all(np.asarray(res.delta) == 0)
    # a model whose output depends on the input for some rows only was (and is) fine
    half = ft.ig_grad_fn(lambda x: torch.cat([x[:2].sum(1, keepdim=True), torch.zeros(2, 1, dtype=x.dtype)]))
    np.testing.assert_array_equal(half(points), np.r_[np.ones((2, 5)), np.zeros((2, 5))])


def test_ig_grad_fn_warns_once_about_training_mode_and_keeps_the_mode(rng):
    """Dropout/BatchNorm in training mode make the attributions random / batch-dependent (and
    update running statistics); ig_grad_fn leaves the mode alone, as Captum does, but says so."""
    import warnings

    torch.manual_seed(0)
    points = rng.standard_normal((6, 4))
    for layer in (torch.nn.Dropout(0.5), torch.nn.BatchNorm1d(8)):
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), layer, torch.nn.Linear(8, 2)).double()
        grad_fn = ft.ig_grad_fn(model)
        name = type(layer).__name__
        with pytest.warns(UserWarning, match=rf"{name} layer\(s\) are in training mode.*module.eval\(\)"):
            grad_fn(points, 0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            grad_fn(points, 0)  # once per callable
            grad_fn.forward_fn(points, 0)
        assert model.training and layer.training  # the mode is the caller's
        model.eval()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fresh = ft.ig_grad_fn(model)
            a, b = fresh(points, 0), fresh(points, 0)
        np.testing.assert_array_equal(a, b)  # eval mode: deterministic
        model.train()
        with pytest.warns(UserWarning, match="training mode"):  # the mode at call time counts
            fresh.forward_fn(points, 0)
    with warnings.catch_warnings():  # a model in training mode without such layers: no warning
        warnings.simplefilter("error")
        ft.ig_grad_fn(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh()).double())(points, 0)


def test_tiger_load_state_dict_validates_before_replacing_anything(rng):
    """torch's load_state_dict takes saved group options as they are: maximize="no" was loaded
    and refused only at the next step, with the optimizer already changed. The groups and the
    momentum shapes are now checked before anything is replaced."""
    import copy

    w = torch.nn.Parameter(torch.from_numpy(rng.standard_normal((3, 2))))
    b = torch.nn.Parameter(torch.from_numpy(rng.standard_normal(2)))
    opt = ft.Tiger([w], lr=0.01)
    opt.add_param_group({"params": [b], "lr": 0.02})
    w.grad, b.grad = torch.ones_like(w), torch.ones_like(b)
    opt.step()
    good = opt.state_dict()
    edits = [
        (lambda s: s["param_groups"][1].update(maximize="no"), TypeError,
         r"state_dict\['param_groups'\]\[1\]: maximize: expected a bool, got str"),
        (lambda s: s["param_groups"][0].update(lr=-1.0), ValueError,
         r"state_dict\['param_groups'\]\[0\]: lr: expected a value >= 0"),
        (lambda s: s["param_groups"][0].update(step=-3), ValueError,
         r"state_dict\['param_groups'\]\[0\]: step: expected an integer >= 0"),
        (lambda s: s["param_groups"][1].update(rms_mode="column"), ValueError,
         r"state_dict\['param_groups'\]\[1\]: rms_mode\[0\]: expected one of"),
        (lambda s: s["state"][0].update(momentum=torch.zeros(4)), ValueError,
         r"the momentum of state_dict\['param_groups'\]\[0\]\['params'\]\[0\] must be a tensor of the "
         r"parameter's shape \(3, 2\), got \(4,\)"),
    ]
    for edit, exc, match in edits:
        target = ft.Tiger([w], lr=0.01)
        target.add_param_group({"params": [b], "lr": 0.02})
        before = copy.deepcopy(target.state_dict())
        bad = copy.deepcopy(good)
        edit(bad)
        with pytest.raises(exc, match=match):
            target.load_state_dict(bad)
        after = target.state_dict()
        assert after["param_groups"] == before["param_groups"] and not after["state"]
    # a good state loads; a group saved without an option takes the default; deepcopy works
    old = copy.deepcopy(good)
    del old["param_groups"][1]["maximize"]
    target = ft.Tiger([w], lr=0.01)
    target.add_param_group({"params": [b]})
    target.load_state_dict(old)
    assert target.param_groups[1]["maximize"] is False and target.param_groups[1]["lr"] == 0.02
    assert torch.equal(target.state[w]["momentum"], opt.state[w]["momentum"])
    clone = copy.deepcopy(target)
    assert clone.param_groups[0]["step"] == 1
