"""HTTP conventions shared by every endpoint: problems, request context, transactions, media types."""
