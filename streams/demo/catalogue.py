"""What the demo world is made of: sources, names, channels, reasons, phrases.

Plain data, no logic: change a word list here and the world in
:mod:`streams.demo.world` draws from it. Weights sit next to the choices
they weigh.
"""

from __future__ import annotations

from schemas.models import BILLING, LOGINS, SURVEYS, TICKETS

SOURCES = {
    TICKETS: "helpdesk",
    SURVEYS: "survey-tool",
    LOGINS: "product",
    BILLING: "billing",
}
"""Family -> the CloudEvents ``source`` of its events."""

PLATFORMS = ("web", "desktop", "ios", "android", "api", "other")
PLATFORM_WEIGHTS = (50, 15, 13, 12, 8, 2)
CHANNELS = ("email", "chat", "web", "phone", "social", "other")
CHANNEL_WEIGHTS = (35, 25, 20, 10, 5, 5)
TERM_END_REASONS = ("too_expensive", "missing_features", "no_longer_needed", "low_usage")
NOW_REASONS = ("switched_competitor", "too_expensive", "poor_support", "company_closed")
BURST_REASONS = ("price_increase", "switched_competitor", "outage")
COST_CATEGORIES = (
    ("payroll", 40_000, 250_000),
    ("tooling", 3_000, 40_000),
    ("training", 8_000, 60_000),
)

AGENT_NAMES = (
    "ana",
    "ben",
    "chen",
    "dara",
    "eli",
    "fatima",
    "gus",
    "hana",
    "ivan",
    "jo",
    "kofi",
    "lena",
    "mika",
    "nora",
    "omar",
    "priya",
    "quinn",
    "rosa",
    "sam",
    "tariq",
)
COMPANY_WORDS = (
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "wonka",
    "tyrell",
    "soylent",
    "vandelay",
    "dunder",
    "oscorp",
    "nakatomi",
    "cyberdyne",
    "gekko",
    "massive",
    "prestige",
    "sterling",
    "wernham",
)

POSITIVE = (
    "Great support, the agent fixed it quickly.",
    "Love the new dashboard, it saves me hours every week.",
    "Very easy to set up and the team is super helpful.",
    "Excellent product, we recommend it to everyone.",
    "Fast answer and a friendly agent, thank you!",
    "The reports are clear and really useful.",
)
NEUTRAL = (
    "We use it mainly for the weekly reports.",
    "The export works as described.",
    "I opened the ticket through the web form.",
    "We have three teams on the account.",
    "The meeting with the account manager is next month.",
    "I would like to see the roadmap for the API.",
)
NEGATIVE = (
    "The app is slow and keeps crashing.",
    "Support took days to answer, very frustrating.",
    "Billing is confusing and we were charged twice.",
    "Terrible experience, nothing works on mobile.",
    "The new pricing is too expensive for us.",
    "I am disappointed, the bug is still not fixed.",
)
FOREIGN = {
    "positive": (
        "Muy buen servicio, gracias.",
        "Super Support, vielen Dank!",
        "Produit excellent, très facile à utiliser.",
        "とても使いやすいです。",
    ),
    "neutral": (
        "Usamos la herramienta cada semana.",
        "Wir nutzen vor allem die Berichte.",
        "Nous utilisons surtout l'export.",
        "Usamos principalmente os relatórios.",
    ),
    "negative": (
        "El soporte es muy lento.",
        "Die App stürzt ständig ab.",
        "Très déçu, le problème n'est pas résolu.",
        "O aplicativo é muito lento.",
    ),
}
PHRASES = {"positive": POSITIVE, "neutral": NEUTRAL, "negative": NEGATIVE}
