"""The demo's simulated annotators: who they are (survey traits, personal leanings, which
projects they join) and how they label a photo or a text.

The annotators have group-dependent tendencies (``SIMULATED_EFFECTS``), so a disagreement
analysis of the demo has real group differences to find. A label is drawn from a generator
seeded by (seed, item, annotator), so it does not depend on which annotator the assignment
service happened to hand the item to first.

All names and groups are invented.
"""

import math
import random
from dataclasses import dataclass

from annotation.models import Item
from annotation.surveys import DEFAULT_SURVEY, PREFER_NOT_TO_SAY
from demo.draws import balanced
from demo.images import PRIVACY_VALUES, SCENE_PRIVACY
from demo.texts import HATE_VALUES, TEXT_CATEGORIES

ANNOTATOR_PREFIX = "annotator"

AGE_GROUPS: tuple[str, ...] = tuple(DEFAULT_SURVEY[0]["options"])
GENDERS: tuple[str, ...] = tuple(DEFAULT_SURVEY[1]["options"])
REGIONS: tuple[str, ...] = tuple(DEFAULT_SURVEY[2]["options"])

# Positive = rates photos as more shareable (public); older groups rate them more private.
AGE_PRIVACY_SHIFT: dict[str, float] = {
    "18-24": 0.5,
    "25-34": 0.25,
    "35-44": 0.0,
    "45-54": -0.4,
    "55+": -0.8,
}
# An arbitrary, invented effect so group analysis has something to find: annotators from
# this region pick "offensive" more often (added to its log-odds).
OFFENSIVE_REGION = "Europe"
OFFENSIVE_REGION_LOGIT = 1.6

SIMULATED_EFFECTS = (
    "Photos: older age groups rate photos as more private (shift on the 4-point scale: "
    + ", ".join(f"{group} {shift:+g}" for group, shift in AGE_PRIVACY_SHIFT.items())
    + ").",
    f"Texts: annotators in {OFFENSIVE_REGION} choose 'offensive' more often "
    f"(+{OFFENSIVE_REGION_LOGIT:g} log-odds); an invented effect, not a claim about anyone.",
    "No simulated effect of gender: any gender difference found is chance.",
    "Every annotator also has a personal bias and per-label noise.",
)


@dataclass(frozen=True)
class Persona:
    """A simulated annotator: true traits drive labels; survey answers may hide them."""

    username: str
    age_group: str
    gender: str
    region: str
    # Personal leaning: + rates photos more public / texts more harshly.
    privacy_bias: float
    harshness: float
    survey_mode: str  # "full", "partial" (some "prefer not to say") or "skipped"
    enrols_images: bool
    enrols_texts: bool

    def survey_answers(self, rng: random.Random) -> dict[str, str]:
        answers = {"age_group": self.age_group, "gender": self.gender, "region": self.region}
        if self.survey_mode == "partial":
            hidden = rng.sample(sorted(answers), k=rng.randint(1, 2))
            for key in hidden:
                answers[key] = PREFER_NOT_TO_SAY
        return answers


def personas_generate(n: int, k: int, rng: random.Random) -> list[Persona]:
    ages = balanced(AGE_GROUPS, n, rng)
    regions = balanced(REGIONS, n, rng)
    genders = balanced(("woman", "man", "woman", "man", "non-binary"), n, rng)
    # With spare annotators, a few take part in one project only.
    spare = n > k + 3
    personas = []
    for index in range(n):
        mode = rng.choices(("full", "partial", "skipped"), weights=(75, 15, 10))[0]
        personas.append(
            Persona(
                username=f"{ANNOTATOR_PREFIX}{index + 1:02d}",
                age_group=ages[index],
                gender=genders[index],
                region=regions[index],
                privacy_bias=rng.gauss(0.0, 0.25),
                harshness=rng.gauss(0.0, 0.3),
                survey_mode="full" if index == 0 else mode,
                enrols_images=not (spare and index % 6 == 5),
                enrols_texts=not (spare and index % 6 == 2),
            )
        )
    return personas


def pair_rng(seed: int, item: Item, username: str) -> random.Random:
    # A string seed is hashed with SHA-512: stable across processes and PYTHONHASHSEED.
    return random.Random(f"{seed}:{item.project_id}:{item.external_id}:{username}")  # noqa: S311


def privacy_label(*, kind: str, persona: Persona, rng: random.Random) -> tuple[str, int]:
    """A simulated rating on the 4-point scale and a confidence from 1 to 5."""
    noise = rng.gauss(0.0, 0.55)
    score = SCENE_PRIVACY[kind] + AGE_PRIVACY_SHIFT[persona.age_group] + persona.privacy_bias
    position = min(3, max(0, round(score + noise)))
    confidence = min(5, max(1, 5 - round(abs(noise) * 3)))
    return PRIVACY_VALUES[position], confidence


def hate_label(*, category: str, persona: Persona, rng: random.Random) -> tuple[str, int]:
    """A simulated hate-speech label and a confidence from 1 to 5."""
    base = TEXT_CATEGORIES[category][1]
    logits = [math.log(p) for p in base]
    logits[0] += persona.harshness
    logits[1] += 0.5 * persona.harshness
    if persona.region == OFFENSIVE_REGION:
        logits[1] += OFFENSIVE_REGION_LOGIT
    weights = [math.exp(value) for value in logits]
    value = rng.choices(HATE_VALUES, weights=weights)[0]
    chosen = weights[HATE_VALUES.index(value)] / sum(weights)
    confidence = min(5, max(1, round(1 + 4 * chosen + rng.gauss(0.0, 0.5))))
    return value, confidence
