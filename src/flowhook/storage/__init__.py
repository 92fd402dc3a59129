"""Storage: one Store interface over SQLite (embedded default) and PostgreSQL."""
