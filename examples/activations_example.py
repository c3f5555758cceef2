#!/usr/bin/env python
"""Sparse attention weights with fastcore: causal self-attention scores mapped by softmax,
sparsemax and 1.5-entmax. The sparse maps give exact zeros (most keys get no weight at all), the
masked (future) keys get exactly 0, and the backward pass gives the gradient of the scores.

    python examples/activations_example.py
"""

from __future__ import annotations

import numpy as np

from fastcore import activations as A


def main() -> None:
    rng = np.random.default_rng(0)
    seq, dim = 512, 64
    q = rng.standard_normal((seq, dim)).astype(np.float32)
    k = rng.standard_normal((seq, dim)).astype(np.float32)
    v = rng.standard_normal((seq, dim)).astype(np.float32)
    scores = q @ k.T                                  # (query, key)
    causal = np.tril(np.ones((seq, seq), dtype=bool))  # True = this key may be attended to
    scale = 1.0 / np.sqrt(dim)                         # the usual 1/sqrt(d) temperature

    print(f"causal self-attention, {seq} tokens, head dim {dim}")
    print(f"{'map':10s} {'keys with weight > 0 (mean per query)':>40s} {'max weight':>11s} {'rows sum to 1':>14s}")
    weights = {}
    for name in ("softmax", "sparsemax", "entmax15"):
        w = getattr(A, name)(scores, scale=scale, mask=causal)
        weights[name] = w
        support = (w > 0).sum(-1).mean()
        assert np.all(w[~causal] == 0)            # future keys: exactly zero
        ok = np.allclose(w.sum(-1), 1, atol=1e-5)
        print(f"{name:10s} {support:40.1f} {w.max():11.3f} {str(ok):>14s}")

    # The attention output and the gradient of a loss with respect to the scores.
    w = weights["sparsemax"]
    out = w @ v
    d_out = rng.standard_normal(out.shape).astype(np.float32)
    d_w = d_out @ v.T
    d_scores = A.sparsemax_backward(w, d_w, scale=scale)
    touched = (d_scores != 0).sum(-1).mean()
    print(f"\nsparsemax backward: the gradient reaches {touched:.1f} scores per query on average "
          f"(only the support), none of the masked ones: {np.all(d_scores[~causal] == 0)}")


if __name__ == "__main__":
    main()
