"""The embedded KeyProvider: KEKs and the blind-index key in 0600 files under `data_dir/keys/vault`.

Each KEK version is its own file (`kek-<n>.key`), created atomically with 0600 permissions, and
its start time (KeyProvider.kek_started) a one-line ISO-8601 file beside it (`kek-<n>.started`),
not the key file's mtime, which a copy of the directory without `-p` would reset;
retiring a version deletes both. The erasure journal is `erasures.journal` in the same
directory: one line per entry, appended under an exclusive lock and fsynced before the call
returns (bank.crypto.erasure_journal). Suitable for the demo and for a single host whose disk is
protected; production uses the PKCS#11 provider.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import os
import re
import secrets
import uuid
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bank.crypto.erasure_journal import ErasureEntry, parse_journal
from bank.crypto.provider import KeyProviderError, WrappedKey

_KEY_BYTES = 32
_NONCE_BYTES = 12
_KEK_FILE = re.compile(r"^kek-(\d+)\.key$")
_BLIND_INDEX_FILE = "blind-index.key"
JOURNAL_FILE = "erasures.journal"


def write_new_key_file(path: Path) -> bytes:
    """Create a random 32-byte key file with 0600 permissions; fails if it exists."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(_KEY_BYTES)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key)
        handle.flush()
        os.fsync(handle.fileno())
    return key


def read_key_file(path: Path) -> bytes:
    key = path.read_bytes()
    if len(key) != _KEY_BYTES:
        raise KeyProviderError(f"{path.name} does not hold a 32-byte key")
    return key


class LocalKeyProvider:
    name = "local"
    # Keys are read once and cached; a call is AES or HMAC in process plus one stat() of the
    # KEK file (a few microseconds, docs/decisions.md "Kernel (issue 11)"): a thread hop would
    # cost more than the call, so async callers run it inline.
    blocking = False

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._keks: dict[int, bytes] = {}
        self._blind_index_key: bytes | None = None
        # The journal as last read, and the file identity and size it was read at: appends only
        # grow the file, so an unchanged (inode, size, mtime) means nothing new to parse.
        self._journal: tuple[tuple[int, int, int], list[ErasureEntry], frozenset[uuid.UUID]] = (
            (0, 0, 0),
            [],
            frozenset(),
        )

    def __repr__(self) -> str:
        return f"LocalKeyProvider({self._directory})"

    def _path(self, version: int) -> Path:
        return self._directory / f"kek-{version}.key"

    def kek_versions(self) -> list[int]:
        if not self._directory.is_dir():
            return []
        found = (_KEK_FILE.match(entry.name) for entry in self._directory.iterdir())
        return sorted(int(match.group(1)) for match in found if match)

    def current_kek_version(self) -> int:
        versions = self.kek_versions()
        if versions:
            return versions[-1]
        with contextlib.suppress(FileExistsError):  # another process created it first
            write_new_key_file(self._path(1))
            # The first version starts as it is made: no data key exists under another one.
            self.mark_kek_started(1, datetime.now(UTC))
        return 1

    def new_kek_version(self) -> int:
        version = max(self.kek_versions(), default=0) + 1
        write_new_key_file(self._path(version))
        return version

    def retire_kek_version(self, version: int) -> None:
        if version == self.current_kek_version():
            raise KeyProviderError("the current KEK version cannot be retired")
        self._keks.pop(version, None)
        self._path(version).unlink(missing_ok=True)
        self._started_path(version).unlink(missing_ok=True)

    def _started_path(self, version: int) -> Path:
        return self._directory / f"kek-{version}.started"

    def kek_started(self) -> dict[int, datetime | None]:
        started: dict[int, datetime | None] = {}
        for version in self.kek_versions():
            try:
                text = self._started_path(version).read_text().strip()
            except FileNotFoundError:
                started[version] = None
                continue
            try:
                at = datetime.fromisoformat(text)
            except ValueError:
                raise KeyProviderError(f"kek-{version}.started does not hold a time") from None
            started[version] = at if at.tzinfo is not None else None
        return started

    def mark_kek_started(self, version: int, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("a KEK's start must be timezone-aware")
        if not self._path(version).exists():
            raise KeyProviderError(f"KEK version {version} is not available")
        # Written whole and renamed: a reader sees the old time or the new one, never half.
        path = self._started_path(version)
        spare = self._directory / f".kek-{version}.{secrets.token_hex(4)}"
        descriptor = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(at.astimezone(UTC).isoformat() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(spare, path)

    def _kek(self, version: int) -> bytes:
        key = self._keks.get(version)
        if key is not None and not self._path(version).exists():
            # Retired by another process (`bank keys rotate-kek`): forget it here too, so that
            # nothing is wrapped under a destroyed version and retirement means gone everywhere.
            self._keks.pop(version, None)
            key = None
        if key is None:
            try:
                key = read_key_file(self._path(version))
            except FileNotFoundError:
                raise KeyProviderError(f"KEK version {version} is not available") from None
            self._keks[version] = key
        return key

    def wrap(self, data_key: bytes, *, aad: bytes) -> WrappedKey:
        version = self.current_kek_version()
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = AESGCM(self._kek(version)).encrypt(nonce, data_key, aad)
        return WrappedKey(kek_version=version, blob=nonce + sealed)

    def unwrap(self, wrapped: WrappedKey, *, aad: bytes) -> bytes:
        nonce, sealed = wrapped.blob[:_NONCE_BYTES], wrapped.blob[_NONCE_BYTES:]
        try:
            return AESGCM(self._kek(wrapped.kek_version)).decrypt(nonce, sealed, aad)
        except KeyProviderError:
            raise
        except Exception:  # noqa: BLE001 - InvalidTag and friends: one answer, no detail
            raise KeyProviderError("the wrapped key does not unwrap") from None

    def _blind_key(self) -> bytes:
        if self._blind_index_key is None:
            path = self._directory / _BLIND_INDEX_FILE
            try:
                self._blind_index_key = read_key_file(path)
            except FileNotFoundError:
                try:
                    self._blind_index_key = write_new_key_file(path)
                except FileExistsError:
                    self._blind_index_key = read_key_file(path)
        return self._blind_index_key

    def blind_index(self, purpose: str, value: bytes) -> bytes:
        message = purpose.encode() + b"\x00" + value
        return hmac.new(self._blind_key(), message, hashlib.sha256).digest()

    # Erasure journal -----------------------------------------------------------------------

    @property
    def journal_path(self) -> Path:
        return self._directory / JOURNAL_FILE

    def journal_erasure(self, entry: ErasureEntry) -> None:
        try:
            self._append(entry.line())
        except OSError as exc:
            raise KeyProviderError(
                f"the erasure journal could not be written ({type(exc).__name__})"
            ) from None

    def _append(self, line: bytes) -> None:
        self._directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        created = not self.journal_path.exists()
        descriptor = os.open(self.journal_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            # Writers in other processes (web workers, `bank` commands) take turns, so that a
            # torn tail is cut by exactly one of them and lines never interleave.
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            _cut_torn_tail(descriptor)
            if os.write(descriptor, line) != len(line):
                raise KeyProviderError("the erasure journal could not be written in full")
            os.fsync(descriptor)
        finally:
            os.close(descriptor)  # releases the lock
        if created:  # the new file's name must survive a crash too
            directory = os.open(self._directory, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    def _read_journal(self) -> tuple[list[ErasureEntry], frozenset[uuid.UUID]]:
        try:
            with self.journal_path.open("rb") as handle:
                status = os.fstat(handle.fileno())
                stamp = (status.st_ino, status.st_size, status.st_mtime_ns)
                if stamp == self._journal[0]:
                    return self._journal[1], self._journal[2]
                data = handle.read()
        except FileNotFoundError:
            return [], frozenset()
        entries = parse_journal(data)
        self._journal = (stamp, entries, frozenset(entry.resident_id for entry in entries))
        return entries, self._journal[2]

    def erasures(self) -> list[ErasureEntry]:
        return list(self._read_journal()[0])

    def is_erased(self, resident_id: uuid.UUID) -> bool:
        return resident_id in self._read_journal()[1]


def _cut_torn_tail(descriptor: int) -> None:
    """Truncate a last line without its newline (a write that never returned), so the next
    entry starts a line of its own."""
    size = os.fstat(descriptor).st_size
    if size == 0 or os.pread(descriptor, 1, size - 1) == b"\n":
        return
    # Entries are short: the last newline is within the last few hundred bytes.
    start = max(0, size - 4096)
    tail = os.pread(descriptor, size - start, start)
    last = tail.rfind(b"\n")
    if last < 0 and start > 0:
        raise KeyProviderError("the erasure journal ends in something that is not an entry")
    os.ftruncate(descriptor, start + last + 1)
