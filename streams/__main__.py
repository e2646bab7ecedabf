"""``python -m streams`` is the ``cspulse`` command."""

from streams.cli import main

main()
