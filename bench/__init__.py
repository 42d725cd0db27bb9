"""Benchmarks for orbax_compat: `python -m bench [--smoke]` (see bench/run.py)."""
