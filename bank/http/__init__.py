"""HTTP conventions for every endpoint: problems, request context, transactions, media."""
