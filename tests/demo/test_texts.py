"""The generated texts."""

import random

from demo.texts import texts_generate


def test_texts_generate_distinct_texts_over_every_category():
    texts = texts_generate(120, random.Random(7))

    assert len({text.text for text in texts}) == 120
    assert {text.category for text in texts} == {
        "hateful",
        "offensive",
        "neither",
        "counter_speech",
        "satire",
    }
