"""What replaces a detected value in text: placeholder, type tag, mask, or surrogate.

Only the ``pseudonymize`` operator is reversible (its placeholder is the vault key). The
others are one-way; the vault still records the value so erasure and the egress guard
work the same whatever the operator.
"""

from __future__ import annotations

import re

_DIGITS_KEPT = {"CREDIT_CARD": 4, "IBAN_CODE": 4, "PHONE_NUMBER": 2}

# Surrogates: fictional, deterministic per value (picked by the value's keyed digest).
_FIRST = [
    "Alex",
    "Robin",
    "Sam",
    "Charlie",
    "Jamie",
    "Morgan",
    "Casey",
    "Taylor",
    "Jordan",
    "Avery",
    "Riley",
    "Quinn",
    "Rowan",
    "Sasha",
    "Noa",
    "Eden",
    "Lou",
    "Camille",
    "Dominique",
    "Andrea",
    "Nikola",
    "Kim",
    "Ariel",
    "Jesse",
    "Emery",
    "Harper",
    "Reese",
    "Sky",
    "Marlowe",
    "Ellis",
    "Remy",
    "Alexis",
]
_LAST = [
    "Ashdown",
    "Birchell",
    "Calloway",
    "Dunmore",
    "Elsworth",
    "Fairholm",
    "Garrow",
    "Hartwell",
    "Ingleby",
    "Jarrow",
    "Kettering",
    "Larkspur",
    "Merriden",
    "Northcote",
    "Oakhurst",
    "Pellham",
    "Quenby",
    "Ravensworth",
    "Stainton",
    "Thistlewood",
    "Underhill",
    "Vantry",
    "Wexcombe",
    "Yarrowby",
    "Zennor",
    "Ambleside",
    "Brackwater",
    "Colebrook",
    "Dovercourt",
    "Eastleigh",
    "Fennimore",
    "Greystoke",
]
_CITIES = "Northhaven Eastbrook Westmere Southcliff Lakeford Hillcrest Rivermouth Stonebridge"
_ORGS = "Arbor Beacon Cobalt Delta Ember Fjord Granite Harbor Indigo Juniper Krypton Lumen"


def masked(value: str, entity: str) -> str:
    """Letters and digits become ``*``; card, IBAN and phone keep their last digits."""
    keep = _DIGITS_KEPT.get(entity, 0)
    out = list(re.sub(r"\w", "*", value))
    if keep:
        positions = [i for i, ch in enumerate(value) if ch.isdigit()][-keep:]
        for i in positions:
            out[i] = value[i]
    return "".join(out)


def surrogate(entity: str, digest_hex: str) -> str:
    """A realistic fictional value of the same type, the same for the same value."""
    n = int(digest_hex[:16], 16)
    first, last = _FIRST[n % len(_FIRST)], _LAST[(n >> 8) % len(_LAST)]
    tag = digest_hex[:4]
    if entity == "PERSON":
        return f"{first} {last}"
    if entity == "EMAIL_ADDRESS":
        return f"{first.lower()}.{last.lower()}.{tag}@example.com"
    if entity == "PHONE_NUMBER":
        return f"+1 555 01{n % 100:02d}"
    if entity == "LOCATION":
        return _CITIES.split()[n % 8]
    if entity == "ORGANIZATION":
        return f"{_ORGS.split()[n % 12]} {last} Ltd"
    if entity == "URL":
        return f"https://example.com/{tag}"
    if entity == "IP_ADDRESS":
        return f"192.0.2.{n % 254 + 1}"
    return f"{entity}-{digest_hex[:8].upper()}"
