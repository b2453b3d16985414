"""RAFA: Reason for Future, Act for Now (Liu et al., ICML 2024) — the framework and its benchmarks."""

__version__ = "0.1.0"
