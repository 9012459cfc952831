"""``python -m sync`` is ``apsis-sync`` (useful where the console script is not on PATH)."""

from sync.cli import main

main()
