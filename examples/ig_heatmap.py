#!/usr/bin/env python
"""Integrated-gradients attributions of a small MLP, drawn as a heat map (PNG).

A 784 -> 64 -> 2 tanh MLP is trained (NumPy, a few seconds) to detect a bright patch in noisy
28x28 images; fastcore.ig computes the attributions of the "patch" logit's probability in compiled
code, checks completeness (sum of attributions = f(x) - f(baseline)) and the heat map shows that
the model looks at the patch.

    pip install matplotlib   # for the picture; without it the numbers are still printed
    python examples/ig_heatmap.py [output.png]
"""

from __future__ import annotations

import sys

import numpy as np

from fastcore import ig

SIDE = 28
PATCH = (slice(8, 14), slice(16, 22))


def make_data(rng, n):
    x = rng.normal(0.2, 0.15, (n, SIDE, SIDE))
    y = rng.integers(0, 2, n)
    x[y == 1, PATCH[0], PATCH[1]] += 0.8
    return np.clip(x, 0, 1).reshape(n, -1).astype(np.float32), y


def train(rng, x, y, hidden=64, steps=300, lr=0.5):
    w1 = rng.standard_normal((hidden, x.shape[1])) / np.sqrt(x.shape[1])
    b1 = np.zeros(hidden)
    w2 = rng.standard_normal((2, hidden)) / np.sqrt(hidden)
    b2 = np.zeros(2)
    onehot = np.eye(2)[y]
    for _ in range(steps):
        h = np.tanh(x @ w1.T + b1)
        logits = h @ w2.T + b2
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        d_logits = (p - onehot) / len(x)
        d_h = (d_logits @ w2) * (1 - h ** 2)
        w2 -= lr * d_logits.T @ h
        b2 -= lr * d_logits.sum(0)
        w1 -= lr * d_h.T @ x
        b1 -= lr * d_h.sum(0)
    accuracy = float(np.mean(np.argmax(np.tanh(x @ w1.T + b1) @ w2.T + b2, 1) == y))
    layers = [(w1.astype(np.float32), b1.astype(np.float32)), (w2.astype(np.float32), b2.astype(np.float32))]
    return layers, accuracy


def main() -> None:
    out_path = sys.argv[1] if len(sys.argv) > 1 else "ig_heatmap.png"
    rng = np.random.default_rng(0)
    x_train, y_train = make_data(rng, 2000)
    layers, accuracy = train(rng, x_train, y_train)
    model = ig.MLP(layers, activation="tanh", output="softmax")
    x, y = make_data(rng, 64)
    x = x[y == 1][:8]
    result = ig.integrated_gradients(model, x, 0.0, target=np.ones(len(x), np.int64), n_steps=64,
                                     return_delta=True)
    attr = result.attributions.reshape(-1, SIDE, SIDE)
    inside = np.abs(attr[:, PATCH[0], PATCH[1]]).sum() / np.abs(attr).sum()
    print(f"training accuracy {accuracy:.3f}; {len(x)} images with the patch")
    print(f"completeness: max |sum(attr) - (f(x) - f(0))| = {np.max(np.abs(result.delta)):.2e}")
    print(f"share of |attribution| inside the 6x6 patch (4.6% of the pixels): {inside:.1%}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: pip install matplotlib to draw the heat map")
        return
    fig, axes = plt.subplots(2, 4, figsize=(10, 5))
    for i, ax in enumerate(axes.flat):
        lim = np.abs(attr[i]).max()
        ax.imshow(x[i].reshape(SIDE, SIDE), cmap="gray", alpha=0.6)
        ax.imshow(attr[i], cmap="RdBu_r", vmin=-lim, vmax=lim, alpha=0.7)
        ax.set_axis_off()
    fig.suptitle("Integrated gradients (fastcore.ig, 64 Gauss-Legendre steps): red = evidence for 'patch'")
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    print(f"heat map written to {out_path}")


if __name__ == "__main__":
    main()
