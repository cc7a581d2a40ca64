"""autolr benchmarks: tuning quality per unit of compute, and per-report overhead.

Run ``python -m benchmarks --help``; see ``benchmarks/README.md``.
"""
