#!/usr/bin/env python
"""Train a small softmax-regression model with fastcore's Tiger optimizer (NumPy, CPU):
hidden gradient accumulation over 4 micro-batches, the published warm-up schedule (counted in
micro-steps), per-tensor options from names, and a save/resume that continues bitwise.

    python examples/tiger_example.py
"""

from __future__ import annotations

import numpy as np

import fastcore


def loss_and_grads(W, b, x, y):
    logits = x @ W + b
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.mean(np.log(p[np.arange(len(y)), y]))
    d = p
    d[np.arange(len(y)), y] -= 1
    d /= len(y)
    return float(loss), [(x.T @ d).astype(np.float32), d.sum(axis=0).astype(np.float32)]


def main() -> int:
    rng = np.random.default_rng(0)
    n, dim, classes = 4096, 32, 5
    true_w = rng.standard_normal((dim, classes))
    x = rng.standard_normal((n, dim)).astype(np.float32)
    y = np.argmax(x @ true_w + 0.5 * rng.standard_normal((n, classes)), axis=1)

    W = (0.1 * rng.standard_normal((dim, classes))).astype(np.float32)
    b = np.zeros(classes, np.float32)
    opt = fastcore.Tiger([W, b], lr=2e-2, grad_accum_steps=4, lr_schedule={40: 1.0, 800: 0.1},
                         names=["dense/kernel", "dense/bias"])
    first_loss = None
    for t in range(800):
        idx = rng.integers(0, n, 64)
        loss, grads = loss_and_grads(W, b, x[idx], y[idx])
        first_loss = loss if first_loss is None else first_loss
        opt.step(grads)
        if t == 400:
            saved = (opt.state_dict(), W.copy(), b.copy(), rng.bit_generator.state)
    full_loss, _ = loss_and_grads(W, b, x, y)
    accuracy = float(np.mean(np.argmax(x @ W + b, axis=1) == y))
    print(f"loss {first_loss:.3f} -> {full_loss:.3f}, accuracy {accuracy:.3f}")

    # Resume from step 401 and replay the same batches: the result is bitwise the same.
    state, W2, b2, rng_state = saved
    rng.bit_generator.state = rng_state
    opt2 = fastcore.Tiger([W2, b2], names=["dense/kernel", "dense/bias"], lr_schedule={40: 1.0, 800: 0.1})
    opt2.load_state_dict(state)
    for t in range(401, 800):
        idx = rng.integers(0, n, 64)
        _, grads = loss_and_grads(W2, b2, x[idx], y[idx])
        opt2.step(grads)
    same = np.array_equal(W, W2) and np.array_equal(b, b2)
    print("resumed run bitwise identical:", same)
    return 0 if same and accuracy > 0.7 else 1


if __name__ == "__main__":
    raise SystemExit(main())
