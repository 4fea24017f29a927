"""steward's benchmarks, run with ``python -m benchmarks.run`` (see benchmarks/README.md)."""
