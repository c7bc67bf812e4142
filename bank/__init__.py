"""The city information bank: kernel (settings, database, HTTP conventions, jobs) and services."""

__version__ = "0.1.0"
