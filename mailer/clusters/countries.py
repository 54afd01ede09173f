"""Countries as ISO 3166-1 alpha-2 codes, wherever one is given: codes or English names.

pycountry holds the standard's names; a few names people commonly write that the
standard spells otherwise ("UK", "Russia", "Turkey") are added here.
"""

from __future__ import annotations

from functools import lru_cache

import pycountry

from consent.addresses import InvalidInput

_ALIASES = {
    "uk": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "russia": "RU",
    "turkey": "TR",
    "czech republic": "CZ",
    "the netherlands": "NL",
    "holland": "NL",
    "kosovo": "XK",  # not in ISO 3166-1; the code the EU and others use for it
    "el": "GR",  # the EU's own code for Greece
}
_NAMES = {"XK": "Kosovo"}


@lru_cache(maxsize=1024)
def country_code(value: str) -> str:
    """'Spain', 'spain', 'ES', 'ESP' -> 'ES'; InvalidInput naming the value otherwise."""
    text = " ".join(str(value).split())
    if not text or len(text) > 100:
        raise InvalidInput(f"unknown country {text[:100]!r}: give an ISO code or an English name")
    alias = _ALIASES.get(text.casefold())
    if alias is not None:
        return alias
    if text.upper() in _NAMES:
        return text.upper()
    try:
        found = pycountry.countries.lookup(text)
    except LookupError:
        raise InvalidInput(
            f"unknown country {text!r}: give an ISO code (ES) or an English name (Spain)"
        ) from None
    return str(found.alpha_2)


def country_name(code: str) -> str:
    """The English (common) name of an alpha-2 code, or the code itself if unknown."""
    if code in _NAMES:
        return _NAMES[code]
    found = pycountry.countries.get(alpha_2=code)
    if found is None:
        return code
    return str(getattr(found, "common_name", None) or found.name)
