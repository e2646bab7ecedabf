"""What customers do in the product and with support: sessions, tickets, surveys."""

from __future__ import annotations

from functools import partial
from typing import Any

from streams.demo.catalogue import (
    CHANNEL_WEIGHTS,
    CHANNELS,
    FOREIGN,
    PHRASES,
    PLATFORM_WEIGHTS,
    PLATFORMS,
)
from streams.demo.core import (
    HEARTBEAT_MS,
    HISTORY_HEARTBEAT_MS,
    WorldCore,
    _clamp,
    _Session,
    _Ticket,
)


class Usage(WorldCore):
    """Sessions with heartbeats, tickets through replies and resolution, survey answers."""

    # -------------------------------------------------------------- sessions

    def _start_session(self) -> None:
        """A user opens the product; ex-customers and prospects rarely do."""
        acct = self._pick()
        rng = self._rng
        if acct.sub is None and rng.random() > 0.05:
            return
        s = _Session(
            self._new_id("s-"),
            acct.account_id,
            rng.choice(acct.users),
            end_ms=self._now + round(self._delay(900, 0.8, 60, 3600) * 1000),
            clean=rng.random() < 0.85,
        )
        platform = rng.choices(PLATFORMS, PLATFORM_WEIGHTS)[0]
        self._emit(
            "session.started",
            {
                "account_id": s.account_id,
                "session_id": s.session_id,
                "user_id": s.user_id,
                "platform": platform,
            },
        )
        self._at(min(self._now + self._heartbeat_ms(), s.end_ms), partial(self._session_tick, s))

    def _heartbeat_ms(self) -> int:
        return HISTORY_HEARTBEAT_MS if self._historic() else HEARTBEAT_MS

    def _session_tick(self, s: _Session) -> None:
        """Heartbeat every ~60 s until the end; unclean sessions just go silent."""
        data = {"account_id": s.account_id, "session_id": s.session_id, "user_id": s.user_id}
        if self._now >= s.end_ms:
            if s.clean:
                self._emit("session.ended", data)
            return
        self._emit("session.heartbeat", data)
        jitter = int(self._rng.uniform(-300, 300))
        next_ms = self._now + self._heartbeat_ms() + jitter
        self._at(min(next_ms, s.end_ms), partial(self._session_tick, s))

    # --------------------------------------------------------------- support

    def _open_ticket(self, backlog: bool = False) -> None:
        """Customers of live accounts open tickets; at-risk accounts more often."""
        acct = self._pick()
        rng = self._rng
        if not backlog and (acct.sub is None or (not acct.at_risk and rng.random() < 0.3)):
            return
        user = rng.choice(acct.users) if rng.random() < 0.8 else None
        first_contact = rng.random() < 0.70
        rounds = 0 if first_contact else (1 if rng.random() < 0.75 else 2)
        t = _Ticket(self._new_id("T-"), acct, user, rng.choice(self._agents), rounds)
        data: dict[str, Any] = {
            "account_id": acct.account_id,
            "ticket_id": t.ticket_id,
            "channel": rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0],
        }
        if user is not None:
            data["user_id"] = user
        self._emit("ticket.opened", data)
        self._after(self._delay(720, 0.9, 20, 8 * 3600), partial(self._agent_reply, t))

    def _agent_reply(self, t: _Ticket) -> None:
        """An agent answers; then either the customer comes back or the ticket is resolved."""
        if self._rng.random() < 0.15:  # a colleague takes over now and then
            t.agent_id = self._rng.choice(self._agents)
        self._emit(
            "ticket.replied",
            {
                "account_id": t.account.account_id,
                "ticket_id": t.ticket_id,
                "author": "agent",
                "agent_id": t.agent_id,
            },
        )
        if t.rounds > 0:
            self._after(self._delay(1200, 1.0, 30, 12 * 3600), partial(self._customer_reply, t))
        else:
            self._after(self._delay(360, 0.9, 10, 2 * 3600), partial(self._resolve, t))

    def _customer_reply(self, t: _Ticket) -> None:
        """The customer needs more help: one more agent reply will follow."""
        t.rounds -= 1
        self._emit(
            "ticket.replied",
            {"account_id": t.account.account_id, "ticket_id": t.ticket_id, "author": "customer"},
        )
        self._after(self._delay(600, 0.9, 20, 6 * 3600), partial(self._agent_reply, t))

    def _resolve(self, t: _Ticket) -> None:
        """Resolve; after the first resolution maybe a survey, and ~8 % reopen later."""
        data = {"account_id": t.account.account_id, "ticket_id": t.ticket_id}
        if self._rng.random() < 0.9:
            data["agent_id"] = t.agent_id
        self._emit("ticket.resolved", data)
        if t.resolved:
            return
        t.resolved = True
        rng = self._rng
        if rng.random() < 0.08:
            self._after(self._delay(2700, 0.8, 120, 6 * 3600), partial(self._reopen, t))
        for kind, share in (("csat", 0.4), ("ces", 0.15)):
            if rng.random() < share:
                self._after(
                    self._delay(900, 1.0, 30, 6 * 3600), partial(self._ticket_survey, t, kind)
                )

    def _reopen(self, t: _Ticket) -> None:
        """The fix did not hold: reopened, one more agent reply, resolved again."""
        t.reopened = True
        t.rounds = 0
        self._emit(
            "ticket.reopened",
            {"account_id": t.account.account_id, "ticket_id": t.ticket_id},
        )
        self._after(self._delay(600, 0.9, 20, 4 * 3600), partial(self._agent_reply, t))

    # --------------------------------------------------------------- surveys

    def _ticket_survey(self, t: _Ticket, kind: str) -> None:
        """CSAT/CES after a resolution; long or reopened tickets leave customers less happy."""
        unhappy = 0.08 + (0.25 if t.reopened else 0.0) + (0.3 if t.account.at_risk else 0.0)
        data: dict[str, Any] = {
            "account_id": t.account.account_id,
            "ticket_id": t.ticket_id,
            "agent_id": t.agent_id,
        }
        if t.user_id is not None:
            data["user_id"] = t.user_id
        self._answer(kind, unhappy, data)

    def _product_survey(self, kind: str) -> None:
        """Relationship NPS and in-app CES, from users of live accounts."""
        acct = self._pick()
        if acct.sub is None:
            return
        data: dict[str, Any] = {
            "account_id": acct.account_id,
            "user_id": self._rng.choice(acct.users),
        }
        self._answer(kind, 0.5 if acct.at_risk else 0.1, data)

    def _answer(self, kind: str, unhappy: float, data: dict[str, Any]) -> None:
        """Draw a satisfaction level, map it to the kind's scale, maybe add a comment."""
        rng = self._rng
        q = _clamp(
            rng.gauss(0.35, 0.2) if rng.random() < unhappy else rng.gauss(0.85, 0.15), 0.0, 1.0
        )
        data["kind"] = kind
        if kind == "nps":
            data["score"] = round(q * 10)
        elif kind == "ces":
            data["score"] = 1 + round(q * 6)
        else:
            scale = rng.choices((5, 7, 10), (75, 15, 10))[0]
            data["score"] = 1 + round(q * (scale - 1))
            if scale != 5 or rng.random() < 0.5:  # leave the default implicit half the time
                data["scale_max"] = scale
        if rng.random() < 0.5:
            data["comment"] = self._comment(q)
        self._emit("survey.answered", data)

    def _comment(self, q: float) -> str:
        """Plain-English comment whose tone mostly matches the score; a few other languages."""
        rng = self._rng
        tones = ("positive", "neutral", "negative")
        if q >= 0.75:
            weights = (85, 15, 0)
        elif q >= 0.55:
            weights = (20, 60, 20)
        else:
            weights = (0, 15, 85)
        tone = rng.choices(tones, weights)[0]
        if rng.random() < 0.06:
            return rng.choice(FOREIGN[tone])
        phrases = rng.sample(PHRASES[tone], 2 if rng.random() < 0.3 else 1)
        return " ".join(phrases)
