"""One script per benchmark, each printing one JSON line last; shared helpers in support.py."""
