"""Consent: purposes, templates, requests and artefacts that decide what leaves the bank."""
