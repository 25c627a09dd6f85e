"""Artifact digests tagged with their algorithm: ``"blake3:9f2c..."``, ``"sha256:ab01..."``.

Every :class:`~crystallize.plugin.ArtifactRecord` says which hash its store
used, as OCI image digests do, so a reader (``crystallize verify``, a
mirror, a lineage tracker) rehashes the bytes with that same algorithm and
stores are free to choose theirs: crystallize-artifacts uses BLAKE3 (fast
enough that hashing never bounds a streamed write), the in-memory reference
store the standard library's SHA-256.

``"blake3"`` comes from the ``blake3`` package, imported only when a BLAKE3
hasher is asked for (the core does not depend on it); every other name is
one of :mod:`hashlib`'s fixed-size algorithms (``sha256``, ``sha512``,
``blake2b``, ``sha3_256``, ...). Algorithm names are lowercase; the hex part
is lowercase and exactly as long as the algorithm's digest.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Protocol

__all__ = ["Hasher", "new_hasher", "hash_bytes", "format_digest", "parse_digest", "digest_problem"]

#: ``<algorithm>:<hex>``; the algorithm's own rules are checked after the shape. Compiled on
#: first use by :mod:`re`'s cache (compiling costs ~0.4 ms, paid by every ``crystallize.plugin`` import otherwise).
_SHAPE = r"([a-z0-9][a-z0-9_-]*):([0-9a-f]+)"
_ALGORITHM = r"[a-z0-9][a-z0-9_-]*"
#: digest size in bytes of every algorithm seen so far (``None``: not an algorithm we can use).
_SIZES: dict[str, int | None] = {"blake3": 32, "sha256": 32}
_FORMAT = "'<algorithm>:<lowercase hex>' (such as 'blake3:' or 'sha256:' followed by the hex digest)"


class Hasher(Protocol):
    """What :func:`new_hasher` returns: ``hashlib``'s interface, as far as digests need it."""

    def update(self, data: Any, /) -> Any:
        """Feed bytes (any object with the buffer protocol)."""
        ...

    def hexdigest(self) -> str:
        """The digest of everything fed so far, as lowercase hex."""
        ...


def new_hasher(algorithm: str) -> Hasher:
    """A fresh hasher for ``algorithm`` (``"blake3"``, or any fixed-size :mod:`hashlib` algorithm).

    :raises ImportError: ``"blake3"`` was asked for and the ``blake3`` package
        is not installed (the message says ``pip install blake3``).
    :raises ValueError: ``algorithm`` is not one we know, naming it.
    """
    if algorithm == "blake3":
        try:
            from blake3 import blake3
        except ImportError:
            raise ImportError(
                "BLAKE3 digests need the blake3 package, which is not installed: pip install blake3"
            ) from None
        return blake3()  # type: ignore[no-any-return]
    if _size(algorithm) is None:
        raise ValueError(f"unknown digest algorithm {algorithm!r}: use 'blake3' or one of hashlib's (such as 'sha256')")
    return hashlib.new(algorithm)


def hash_bytes(data: Any, algorithm: str) -> str:
    """The tagged digest (``"<algorithm>:<hex>"``) of ``data`` (bytes or any buffer)."""
    hasher = new_hasher(algorithm)
    hasher.update(data)
    return f"{algorithm}:{hasher.hexdigest()}"


def format_digest(algorithm: str, hexdigest: str) -> str:
    """``"<algorithm>:<hexdigest>"``, checked as :func:`parse_digest` would read it back.

    :raises ValueError: the result would not be a valid digest, naming it and why.
    """
    value = f"{algorithm}:{hexdigest}"
    problem = digest_problem(value)
    if problem is not None:
        raise ValueError(f"{value[:120]!r} is not a valid digest: {problem}")
    return value


def parse_digest(value: str) -> tuple[str, str]:
    """Split a tagged digest into ``(algorithm, hex)``.

    :raises ValueError: ``value`` is malformed or names an unknown algorithm;
        the message names the value and the expected form.
    """
    problem = digest_problem(value)
    if problem is not None:
        shown = f"{value[:120]!r}" if isinstance(value, str) else type(value).__name__
        raise ValueError(f"{shown} is not a valid digest: {problem}")
    algorithm, _, hexdigest = value.partition(":")
    return algorithm, hexdigest


def digest_problem(value: Any) -> str | None:
    """Why ``value`` is not a valid tagged digest (a phrase), or ``None`` if it is one."""
    if type(value) is not str:
        return f"expected a string {_FORMAT}"
    match = re.fullmatch(_SHAPE, value)
    if match is None:
        return f"expected {_FORMAT}"
    algorithm, hexdigest = match.groups()
    size = _size(algorithm)
    if size is None:
        return f"unknown algorithm {algorithm!r}; expected 'blake3' or one of hashlib's (such as 'sha256')"
    if len(hexdigest) != 2 * size:
        return f"a {algorithm} digest has {2 * size} hex digits, not {len(hexdigest)}"
    return None


def _size(algorithm: str) -> int | None:
    """The digest size of a :mod:`hashlib` algorithm in bytes; ``None`` if unknown or of variable size."""
    try:
        return _SIZES[algorithm]
    except KeyError:
        pass
    size: int | None = None
    if type(algorithm) is str and re.fullmatch(_ALGORITHM, algorithm) and algorithm in hashlib.algorithms_available:
        try:
            size = hashlib.new(algorithm).digest_size or None  # shake_*: variable size, unusable here
        except ValueError:  # listed by OpenSSL but disabled (FIPS mode)
            size = None
    if len(_SIZES) < 256:
        _SIZES[algorithm] = size
    return size
