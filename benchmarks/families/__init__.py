"""One module per kernel family; each defines cases(ctx) -> list[harness.Case]."""
