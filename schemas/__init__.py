"""The event contract (docs/contract/events.md) as code: typed payloads, the validator
the worker calls for every message, and the JSON Schema files for producers."""

from schemas.validate import REASONS, Event, Rejected, parse_event, parse_events

__all__ = ["REASONS", "Event", "Rejected", "parse_event", "parse_events"]
