"""Wellness points: pure rules, the append-only ledger, awarding jobs and redemption."""
