"""Benchmarks of the byol library (speed against peer implementations, augmentation backends).

Run from the repository root, e.g. ``python -m benchmarks.speed.run --quick``; recorded results
live in ``benchmarks/results/``.
"""
