"""Cryptography recipes for the bank: key wrapping now, envelope encryption with the vault."""
