"""Write the alert rules with runbook links pointing at your own copy of the runbooks.

The committed ``rules.yml`` links each alert to its section of the project's
``docs/alerts.md``. Teams that keep runbooks elsewhere (a wiki, an internal
docs site, a fork) generate their rules file with their base URL; each alert
keeps its anchor (``#churnspike``, ``#redisdown``, ...)::

    python -m deploy.prometheus.rules --runbook-base-url https://wiki.example.com/cspulse-alerts \\
        --output /etc/prometheus/cspulse-rules.yml
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

RULES = Path(__file__).with_name("rules.yml")
DEFAULT_RUNBOOK_BASE_URL = "https://github.com/cspulse/cspulse/blob/main/docs/alerts.md"
_RUNBOOK = re.compile(r"^(?P<head>\s*runbook_url: )\S+#(?P<anchor>[\w-]+)$", re.M)


def render(runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL, source: Path = RULES) -> str:
    """The rules file with every ``runbook_url`` set to ``<base>#<alert anchor>``."""
    base = runbook_base_url.rstrip("/")
    if not re.match(r"^https?://\S+$", base):
        raise ValueError(f"runbook base URL must be an http(s) URL without spaces: {base!r}")
    text = source.read_text(encoding="utf-8")
    return _RUNBOOK.sub(lambda m: f"{m['head']}{base}#{m['anchor']}", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runbook-base-url", default=DEFAULT_RUNBOOK_BASE_URL)
    parser.add_argument("--output", type=Path, help="file to write (default: standard output)")
    args = parser.parse_args(argv)
    try:
        text = render(args.runbook_base_url)
    except ValueError as exc:
        parser.error(str(exc))
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
