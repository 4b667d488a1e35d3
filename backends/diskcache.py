"""The on-disk cache of compiled artifacts (LLVM objects, CUDA cubins): its folder, a
self-checking entry format, and atomic writes. Both compilers keep their own key hashing and
statistics; the file handling is this module's.

An entry is ``MAGIC + sha256(rest) + rest``, where ``rest`` is one line of JSON (the header: the
format version, the hash of the key the entry belongs to, the payload's size and SHA-256, plus
the caller's fields), a newline, and the payload. ``decode`` accepts only an entry that is intact
and belongs to the key asked for: a truncated, corrupted or foreign file is refused, never
loaded.

>>> data = encode(b"DEMO\\n", 1, "k1", b"payload", note="hi")
>>> decode(b"DEMO\\n", 1, data, "k1")
({'format': 1, 'key_hash': 'k1', 'note': 'hi', 'payload_sha256': '239f59ed55e737c77147cf55ad0c1b030b6d7ee748a7426952f9b852d5a935e5', 'payload_size': 7}, b'payload')
>>> decode(b"DEMO\\n", 1, data, "k2") is None, decode(b"DEMO\\n", 1, data[:-1], "k1") is None
(True, True)
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile


def cache_dir():
    """``$MLC_CACHE_DIR``, else ``$XDG_CACHE_HOME/mlc`` or ``~/.cache/mlc``; None when the cache
    is disabled (``MLC_CACHE_DIR=`` or ``MLC_DISABLE_CACHE=1``)."""
    if os.environ.get("MLC_DISABLE_CACHE", "") not in ("", "0"):
        return None
    d = os.environ.get("MLC_CACHE_DIR")
    if d is not None:
        return d or None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "mlc")


def encode(magic: bytes, version: int, key_hash: str, payload: bytes, **fields) -> bytes:
    """An entry holding ``payload`` for ``key_hash``, with ``fields`` in its header."""
    header = dict(fields)
    header.update(
        format=version,
        key_hash=key_hash,
        payload_size=len(payload),
        payload_sha256=hashlib.sha256(payload).hexdigest(),
    )
    rest = json.dumps(header, sort_keys=True).encode() + b"\n" + payload
    return magic + hashlib.sha256(rest).digest() + rest


def decode(magic: bytes, version: int, data: bytes, key_hash: str):
    """``(header, payload)`` if ``data`` is an intact entry for ``key_hash``, else None."""
    if not data.startswith(magic):
        return None
    digest, rest = data[len(magic) : len(magic) + 32], data[len(magic) + 32 :]
    if hashlib.sha256(rest).digest() != digest:  # truncated or corrupted anywhere
        return None
    head, sep, payload = rest.partition(b"\n")
    try:
        header = json.loads(head)
    except ValueError:
        return None
    ok = (
        sep
        and isinstance(header, dict)
        and header.get("format") == version
        and header.get("key_hash") == key_hash  # another key's file copied over this one
        and header.get("payload_size") == len(payload)
        and header.get("payload_sha256") == hashlib.sha256(payload).hexdigest()
    )
    return (header, payload) if ok else None


def read(path: str):
    """The file's bytes, or None when it is missing or unreadable (a plain miss)."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def write_atomic(path: str, data: bytes) -> bool:
    """Write through a temporary file in the same folder and a rename, so a reader (another
    process racing for the same entry) sees the old file or the whole new one, never half of
    one. False when it failed (read-only folder, disk full, ...): callers carry on uncached."""
    tmp = None
    try:
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path), suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return True
    except OSError:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return False
