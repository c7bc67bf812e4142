"""One Alembic history for every package (run with `bank db upgrade`)."""
