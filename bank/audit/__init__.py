"""The kernel's append-only, hash-chained audit log: who did what, to what, when and why."""

from bank.audit.rules import DetailValue, Principal
from bank.audit.service import AuditLog, StreamReport, verify

__all__ = ["AuditLog", "DetailValue", "Principal", "StreamReport", "verify"]
