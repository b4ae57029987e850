"""Benchmark harness: learned vs classic indexes, memory and speed (``python -m bench``).

Repository tooling, importable from the repository root; not part of the learnedidx wheel.
"""
