"""The demo, not the worker: what ``cspulse run`` and ``cspulse generate`` add around it.

:mod:`~streams.demo.world` simulates customers (deterministic, no I/O), drawing
from :mod:`~streams.demo.catalogue` and swapping a share of events for
:mod:`~streams.demo.malformed` ones; :mod:`~streams.demo.producer` publishes
them in real time; :mod:`~streams.demo.embedded` starts a broker and Redis
when none are configured. Production runs none of it.
"""
