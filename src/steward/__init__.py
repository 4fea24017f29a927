"""steward: governance-first MLOps, from data to prediction, with a tamper-evident record."""

__version__ = "0.1.0"

__all__ = ["__version__"]
