"""Alembic migrations of the steward metadata schema."""
