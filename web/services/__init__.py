"""Business rules as plain functions over a SQLAlchemy Session (no Flask here)."""
