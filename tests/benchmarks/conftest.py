"""pytest-benchmark layout: one group per kernel and size, holding the compiled call and its
comparisons (the NumPy reference, peers) on the same inputs, so the report shows the ratios.

    pytest tests/benchmarks --benchmark-enable      # real measurements
    pytest                                          # CI: each benchmark runs once (--benchmark-disable)
"""
