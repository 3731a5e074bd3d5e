"""Benchmarks: `uv run python -m bench.bench_<topic>`, results in bench/results/."""
