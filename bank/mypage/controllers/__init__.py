"""マイページ's controllers: the resident's data (records.py), and links, export, account."""
