"""Persistence: the metadata store (SQLAlchemy Core) and its schema."""
