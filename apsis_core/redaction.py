"""Every secret the process knows, and ``scrub``, which blanks them out of text.

A secret is remembered when it is read (a client secret from a file or prompt, a settings
value, a portal form) and kept for the process's lifetime, so ``scrub`` — the last line of
defence of error messages (``ApsisError.show``), tracebacks under ``--debug`` and
third-party logs — can hide it before anything is printed.

It imports nothing of the project's: errors, logs and the CLIs all reach it, and it
reaches none of them.
"""

from __future__ import annotations

MASK = "********"
SHORTEST = 6  # shorter values would blank out ordinary words

_known: set[str] = set()


def remember(secret: str | None) -> None:
    """Register a secret so ``scrub`` hides it (ignores empty and very short values)."""
    if secret and len(secret) >= SHORTEST:
        _known.add(secret)


def scrub(text: str) -> str:
    """``text`` with every remembered secret replaced by ``MASK`` (longest first, so a
    secret that contains another is blanked out whole)."""
    for secret in sorted(_known, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
