"""``python -m tests.faulty_worker worker``: ``cspulse`` with faults for tests.

Every family's ``CSPULSE_TEST_FAULT_IN`` part (``fold`` unless set; see
:mod:`tests.faults`) raises for the event ids in ``CSPULSE_TEST_FAULT_IDS``
(comma-separated).
"""

from __future__ import annotations

import os

from tests.faults import install

ids = frozenset(i for i in os.environ.get("CSPULSE_TEST_FAULT_IDS", "").split(",") if i)
if ids:
    install(ids, os.environ.get("CSPULSE_TEST_FAULT_IN", "fold"))

from streams.cli import main  # noqa: E402

main()
