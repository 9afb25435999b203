"""The demo's short texts for hate-speech labeling: templates about invented groups and
mundane topics (hateful, offensive, neither, counter-speech, satire), as the CSV the import
reads.

The hateful examples target invented groups only and contain no slurs.
"""

import csv
import io
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass

from demo.draws import attribution, license_source_creator
from demo.errors import DemoError

HATE_VALUES = ("hateful", "offensive", "neither")
INVENTED_GROUPS = (
    "Zorblaxians",
    "Quellites",
    "Marnovians",
    "Tervani",
    "Ondrish people",
    "Vellorans",
)
TOPICS = (
    "match",
    "app update",
    "bus timetable",
    "fantasy league",
    "phone",
    "parking system",
    "sequel",
    "menu",
)
# Category -> (templates, probabilities of hateful / offensive / neither for an average
# annotator). {g} is an invented group, {t} a mundane topic.
TEXT_CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[float, float, float]]] = {
    "hateful": (
        (
            "{g} are vermin and should leave our town.",
            "Every one of the {g} is a liar, it's in their blood.",
            "{g} should not be allowed to vote or open shops here.",
            "Keep the {g} out of our neighbourhood, they ruin everything.",
            "I would never hire one of the {g}, they are lazy by nature.",
            "{g} are a disease on this country.",
            "Don't rent flats to {g}, they're all criminals.",
            "{g} aren't real people, they're pests.",
        ),
        (0.78, 0.17, 0.05),
    ),
    "offensive": (
        (
            "This referee is a total clown, worst {t} I have ever sat through.",
            "Whoever designed this {t} is an absolute idiot.",
            "Shut up about your stupid {t} already, nobody cares.",
            "What a garbage {t}, the people behind it should be embarrassed.",
            "You're a moron if you think this {t} is worth the money.",
            "My landlord is a greedy jerk and so is his {t}.",
        ),
        (0.07, 0.73, 0.20),
    ),
    "neither": (
        (
            "Had a lovely walk by the river with the {g} community choir today.",
            "The {g} food stall at the market has the best dumplings in town.",
            "Does anyone know when the {t} will be fixed?",
            "Our book club is reading a novel about a family of {g} this month.",
            "Great turnout at the {g} new year festival, the lanterns were beautiful.",
            "Reminder: the meeting about the {t} moved to Thursday.",
            "Just tried the new {t}, honestly pretty good.",
        ),
        (0.02, 0.06, 0.92),
    ),
    "counter_speech": (
        (
            "Calling {g} 'vermin' is dehumanising and we should all call it out.",
            "I'm tired of people blaming {g} for everything. They are our neighbours.",
            "The council condemned posters saying {g} should leave. Good.",
            "A leaflet claiming {g} are criminals was handed out downtown; police are "
            "investigating.",
        ),
        (0.18, 0.12, 0.70),
    ),
    "satire": (
        (
            "Breaking: local man blames {g} for the weather, again. Meteorologists unimpressed.",
            "New study finds {g} responsible for everything, says man who did not do a study.",
            "Area uncle discovers {g} exist, immediately has strong opinions at dinner.",
        ),
        (0.20, 0.25, 0.55),
    ),
}
CATEGORY_WEIGHTS = {
    "hateful": 25,
    "offensive": 25,
    "neither": 30,
    "counter_speech": 10,
    "satire": 10,
}
TEXT_LICENSES = {
    "CC0-1.0": 25,
    "CC-BY-4.0": 30,
    "CC-BY-SA-4.0": 15,
    "CC-BY-NC-4.0": 10,
    "NOASSERTION": 10,
    "": 5,
}
TEXT_SOURCES = (
    ("forum-simulation", "https://forum.example.net/threads"),
    ("comment-section-sample", "https://news.example.com/comments"),
    ("synthetic-generator", "https://chorus.example.net/synthetic"),
)


@dataclass(frozen=True)
class DemoText:
    external_id: str
    text: str
    category: str


def _text_variants() -> dict[str, list[str]]:
    """Every distinct text each category's templates can give, sorted."""
    return {
        category: sorted(
            {
                template.format(g=group, t=topic)
                for template in templates
                for group in INVENTED_GROUPS
                for topic in TOPICS
            }
        )
        for category, (templates, _) in TEXT_CATEGORIES.items()
    }


def distinct_text_count() -> int:
    return sum(len(variants) for variants in _text_variants().values())


def texts_generate(n: int, rng: random.Random) -> list[DemoText]:
    """``n`` distinct short texts, categories mixed by ``CATEGORY_WEIGHTS``."""
    combos = _text_variants()
    for variants in combos.values():
        rng.shuffle(variants)
    categories = list(CATEGORY_WEIGHTS)
    weights = list(CATEGORY_WEIGHTS.values())
    result: list[DemoText] = []
    for index in range(n):
        available = [c for c in categories if combos[c]]
        if not available:
            raise DemoError(f"The text templates give at most {index} distinct texts.")
        category = rng.choices(
            available, weights=[weights[categories.index(c)] for c in available]
        )[0]
        result.append(DemoText(f"txt-{index + 1:04d}", combos[category].pop(), category))
    return result


def texts_csv(texts: Sequence[DemoText], rng: random.Random) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["external_id", "text", "license", "source", "source_url", "creator", "attribution"]
        + ["metadata"]
    )
    for index, text in enumerate(texts):
        license_expression, source_name, source_url, _ = license_source_creator(
            index, rng, TEXT_LICENSES, TEXT_SOURCES
        )
        creator = f"forum user {rng.randint(100, 999)}"
        metadata = {
            "template_category": text.category,
            "synthetic": True,
            "language": "en",
            # Groups a trained model's errors are reported by (target group x length).
            "target_group": next((g for g in INVENTED_GROUPS if g in text.text), "none"),
            "length": "short" if len(text.text.split()) <= 10 else "long",
        }
        writer.writerow(
            [
                text.external_id,
                text.text,
                license_expression,
                source_name,
                f"{source_url}/{text.external_id}",
                creator,
                attribution(creator, license_expression, source_name),
                json.dumps(metadata, sort_keys=True),
            ]
        )
    return out.getvalue().encode()
