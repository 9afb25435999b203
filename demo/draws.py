"""Seeded draws the demo's generators share: balanced groups, and the license, source and
creator each generated item claims, with the attribution line that follows from them.

All creators are invented.
"""

import random
from collections.abc import Sequence

CREATORS = (
    "Ana Kestrel",
    "Bo Lindqvist",
    "Chidi Okafor",
    "Dana Ruiz",
    "Eun-ji Park",
    "Femi Adeyemi",
    "Photo club member 12",
    "Chorus demo generator",
)


def balanced(values: Sequence[str], n: int, rng: random.Random) -> list[str]:
    """Each value about equally often, in random order, so every group has members."""
    drawn = [values[i % len(values)] for i in range(n)]
    rng.shuffle(drawn)
    return drawn


def license_source_creator(
    index: int,
    rng: random.Random,
    licenses: dict[str, int],
    sources: Sequence[tuple[str, str]],
) -> tuple[str, str, str, str]:
    # Every expression once first, so even a small demo shows the variety; then by weight.
    names = list(licenses)
    if index < len(names):
        license_expression = names[index]
    else:
        license_expression = rng.choices(names, weights=list(licenses.values()))[0]
    source_name, source_url = sources[rng.randrange(len(sources))]
    creator = rng.choice(CREATORS)
    return license_expression, source_name, source_url, creator


def attribution(creator: str, license_expression: str, source_name: str) -> str:
    if not license_expression or license_expression == "NOASSERTION":
        return ""
    return f'"{creator}", via {source_name}, {license_expression}'
