"""Tracking: every run recorded in an MLflow store (a SQLite file by default, PostgreSQL for a team)."""
