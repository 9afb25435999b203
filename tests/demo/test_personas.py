"""The simulated annotators: the group effects a disagreement analysis should find."""

import random
from dataclasses import replace
from statistics import mean

from demo.personas import OFFENSIVE_REGION, Persona, hate_label, privacy_label

AVERAGE_PERSONA = Persona(
    username="annotator01",
    age_group="35-44",
    gender="woman",
    region="Asia",
    privacy_bias=0.0,
    harshness=0.0,
    survey_mode="full",
    enrols_images=True,
    enrols_texts=True,
)


def test_privacy_label_older_group_rates_more_private():
    values = ("clearly_private", "private", "public", "clearly_public")
    rng = random.Random(3)

    def average(age_group: str) -> float:
        persona = replace(AVERAGE_PERSONA, age_group=age_group)
        return mean(
            values.index(privacy_label(kind="beach", persona=persona, rng=rng)[0])
            for _ in range(2000)
        )

    assert average("55+") < average("18-24") - 0.8


def test_hate_label_offensive_region_chooses_offensive_more_often():
    rng = random.Random(3)

    def offensive_share(region: str) -> float:
        persona = replace(AVERAGE_PERSONA, region=region)
        labels = [hate_label(category="satire", persona=persona, rng=rng)[0] for _ in range(2000)]
        return labels.count("offensive") / len(labels)

    assert offensive_share(OFFENSIVE_REGION) > offensive_share("Asia") + 0.2
