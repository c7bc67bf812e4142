"""Accounts of residents and operators: sign-up, verification, sign-in, sessions, resets."""
