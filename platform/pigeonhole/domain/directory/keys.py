"""Search keys: what people type, folded so a B-tree index can answer it.

A key is lower-cased (``casefold``), stripped of accents and of repeated
spaces, so "Éloïse  DUPONT" and "eloise dupont" meet. Prefix search is then a
range ``key >= p AND key < successor(p)``, which both databases answer from a
plain index (PostgreSQL's key columns use the "C" collation, see migration
0006). See docs/decisions/0020-directory.md.
"""

from __future__ import annotations

import unicodedata


def fold(text: str | None) -> str:
    if not text:
        return ""
    if text.isascii():  # the common case, and an import folds each contact four times
        return " ".join(text.lower().split())
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.split())


def family_first(name_key: str) -> str:
    """ "ada lovelace" -> "lovelace ada": lets a search by family name use an index too."""
    words = name_key.split(" ")
    if len(words) < 2:
        return name_key
    return " ".join([words[-1], *words[:-1]])


def successor(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix``."""
    code = ord(prefix[-1]) + 1
    if 0xD800 <= code < 0xE000:  # surrogates cannot be encoded: skip over them
        code = 0xE000
    if code > 0x10FFFF:
        return prefix + "\U0010ffff"
    return prefix[:-1] + chr(code)


def prefix_range(column, prefix: str):
    """A Piccolo condition: ``column`` starts with ``prefix`` (already folded, not empty)."""
    return (column >= prefix) & (column < successor(prefix))


def is_unique_violation(exc: BaseException) -> bool:
    """A unique key refused a row a concurrent writer took first (checked before, lost the race)."""
    import sqlite3

    import asyncpg

    return isinstance(exc, asyncpg.UniqueViolationError) or (
        isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)
    )
