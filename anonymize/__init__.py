"""Open data: k-anonymized aggregates, suppression, disclosure audit and the catalog."""
