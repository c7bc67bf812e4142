"""The records vault: residents' steps, transit rides and checkups, sealed per resident."""
