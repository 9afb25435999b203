"""The contamination guard: exact, text and image clusters, their merge, the split check
and the check across versions."""

import random
import string

import imagehash
import numpy as np
import pandas as pd
import pytest
from datasketch import MinHash  # type: ignore[import-untyped]  # no py.typed, no stubs
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageEnhance

# Private: one test checks its LSH premise on them.
from ml.engine.neardup import (
    ClusterCrossing,
    DuplicateCluster,
    Match,
    _minhash_signatures,
    _shingles,
    _text_band_keys,
    clusters_crossing,
    cross_matches,
    cross_version_matches,
    exact_clusters,
    find_clusters,
    image_clusters,
    lsh_bands,
    merge_clusters,
    normalise_text,
    normalised_sha256,
    text_clusters,
)
from ml.engine.splits import SplitSpec, assign_splits

WORDS = (
    "river mill rain orchestra punk gala fox motorway dawn wheat grandmother letter biscuit "
    "stairs committee vote budget children snow fort march bakery corner bread thursday "
    "astronomer meteor cloud ferry harbour wall juggle video clown volunteer oak canal museum "
    "mask village lantern pepper saddle violin glacier parcel tunnel orchard beacon"
).split()


def _sentence(rng: random.Random, words: int = 30) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _edit(rng: random.Random, text: str, changes: int) -> str:
    """``changes`` characters replaced at random places (the kind of copy a scrape makes)."""
    chars = list(text)
    for position in rng.sample(range(len(chars)), changes):
        chars[position] = rng.choice(string.ascii_lowercase)
    return "".join(chars)


def _hex(value: int) -> str:
    return f"{value:016x}"


def _flip(value: int, bits: list[int]) -> int:
    for bit in bits:
        value ^= 1 << bit
    return value


# ------------------------------------------------------------------------ normalise


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello,   World!", "hello world"),
        ("ＦＵＬＬ－ｗｉｄｔｈ", "fullwidth"),  # NFKC folds to ASCII, then the hyphen goes
        ("Café crème brûlée", "cafe creme brulee"),
        ("STRASSE straße", "strasse strasse"),
        ("e-mail don't", "email dont"),
        ("zero\u200bwidth\u00adsoft", "zerowidthsoft"),
        ("tabs\tand\nnewlines\r\n", "tabs and newlines"),
        ("price $5 + tax ☺", "price $5 + tax ☺"),
        ("ﬁne ² ", "fine 2"),
        ("नमस्ते दुनिया", "नमस्ते दुनिया"),  # Devanagari vowel signs and virama are kept
        ("...!!!", ""),
    ],
)
def test_normalise_text_examples(text, expected):
    assert normalise_text(text) == expected


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_normalise_text_is_idempotent(text):
    once = normalise_text(text)

    assert normalise_text(once) == once
    assert once == once.strip()
    assert "  " not in once


def test_normalised_sha256_equal_for_normalised_duplicates():
    assert normalised_sha256("The  Café!") == normalised_sha256("the cafe")
    assert normalised_sha256("the cafe") != normalised_sha256("the cafes")


# ---------------------------------------------------------------------------- exact


def test_exact_clusters_same_key_one_cluster_named_by_smallest_id():
    clusters = exact_clusters([9, 4, 7, 2, 5], ["a", "b", "a", "a", None])

    assert clusters == {2: 2, 7: 2, 9: 2}


def test_exact_clusters_missing_keys_never_match():
    assert exact_clusters([1, 2, 3, 4], [None, None, "", float("nan")]) == {}


def test_exact_clusters_empty_input_is_empty():
    assert exact_clusters([], []) == {}


@pytest.mark.parametrize(
    ("ids", "keys", "message"),
    [([1, 2], ["a"], "2 ids but 1"), ([1, 1], ["a", "b"], "appears twice")],
)
def test_exact_clusters_bad_input_raises(ids, keys, message):
    with pytest.raises(ValueError, match=message):
        exact_clusters(ids, keys)


# ----------------------------------------------------------------------------- text


def test_lsh_bands_recall_at_threshold_is_at_least_target():
    for threshold in (0.5, 0.7, 0.8, 0.9, 1.0):
        bands, rows = lsh_bands(threshold, 128)

        assert bands * rows <= 128 and bands >= 2
        assert 1 - (1 - threshold**rows) ** bands >= 0.99
    assert lsh_bands(0.8, 128) == (21, 6)


_MASK64 = (1 << 64) - 1


def _shingle_hash(shingle: str) -> int:
    """The shingle hash of ``neardup`` one shingle at a time, in Python integers: the
    polynomial of the code points in base 0x9E3779B97F4A7C15 modulo 2**64, fmix64, low 32
    bits."""
    h = 0
    for char in shingle:
        h = (h * 0x9E3779B97F4A7C15 + ord(char)) & _MASK64
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _MASK64
    h ^= h >> 33
    return h & 0xFFFFFFFF


@pytest.mark.parametrize("permuted_bytes", [1 << 23, 4 * 64 * 7])
def test_minhash_signatures_equal_datasketch_with_same_shingle_hash(monkeypatch, permuted_bytes):
    # 4 * 64 * 7 bytes: blocks of 7 shingles, so that most texts straddle blocks.
    monkeypatch.setattr("ml.engine.neardup.PERMUTED_BYTES", permuted_bytes)
    rng = random.Random(2)
    texts = [
        "x",  # one character
        "ok",  # shorter than a shingle: one shingle, the whole text
        "abcde",  # exactly one shingle
        "aaaaaaaa",  # one distinct shingle, repeated
        "café crème brûlée",
        "नमस्ते दुनिया",
        "日本語のテキストと絵文字 😀🎉",
        _sentence(rng, 12),
        "x",  # a text repeated, next to others
    ]

    signatures = _minhash_signatures(texts, shingle_size=5, num_perm=64, seed=7)

    assert signatures.shape == (64, len(texts))
    for position, text in enumerate(texts):
        expected = MinHash(num_perm=64, seed=7, scheme="affine32", hashfunc=_shingle_hash)
        expected.update_batch(sorted(_shingles(text, 5)))
        np.testing.assert_array_equal(signatures[:, position], expected.hashvalues)


def test_minhash_signatures_empty_text_raises():
    with pytest.raises(ValueError, match="empty text"):
        _minhash_signatures(["abc", ""], shingle_size=5, num_perm=16, seed=1)


def test_text_clusters_edited_copies_clustered_and_unrelated_not():
    rng = random.Random(3)
    originals = [_sentence(rng) for _ in range(40)]
    copies = [_edit(rng, text, 3) for text in originals[:20]]
    texts = originals + copies
    ids = list(range(100, 100 + len(texts)))

    clusters = text_clusters(ids, texts)

    for k in range(20):
        assert clusters[ids[40 + k]] == clusters[ids[k]] == ids[k]
    assert all(ids[k] not in clusters for k in range(20, 40))


def test_text_clusters_normalised_exact_copies_joined():
    clusters = text_clusters([1, 2, 3], ["Hello, World!", "hello   world", "goodbye"])

    assert clusters == {1: 1, 2: 1}


def test_text_clusters_candidates_below_threshold_rejected_by_exact_jaccard():
    rng = random.Random(5)
    base = _sentence(rng, 40)
    far = _edit(rng, base, 12)
    texts = [normalise_text(base), normalise_text(far)]
    shingles = [_shingles(text, 5) for text in texts]
    bands, rows = lsh_bands(0.8, 128)
    keys = _text_band_keys(texts, shingle_size=5, num_perm=128, seed=1, bands=bands, rows=rows)
    # The premise: the LSH makes them candidates, yet their shingle sets are not 0.8 alike.
    assert (keys[:, 0] == keys[:, 1]).any()
    assert len(shingles[0] & shingles[1]) / len(shingles[0] | shingles[1]) < 0.8

    assert text_clusters([1, 2], [base, far]) == {}
    assert text_clusters([1, 2], [base, far], threshold=0.6) == {1: 1, 2: 1}


def test_text_clusters_transitive_chain_is_one_cluster():
    rng = random.Random(8)
    first = _sentence(rng, 40)
    second = _edit(rng, first, 2)
    third = _edit(rng, second, 2)

    assert set(text_clusters([1, 2, 3], [first, second, third]).values()) == {1}


def test_text_clusters_empty_and_missing_texts_never_match():
    assert text_clusters([1, 2, 3, 4], ["", None, "!!!", "   "]) == {}


def test_text_clusters_short_texts_are_one_shingle():
    assert text_clusters([1, 2, 3], ["ok", "OK!", "no"], shingle_size=5) == {1: 1, 2: 1}


def test_text_clusters_large_family_of_copies_all_joined():
    # More copies of one text than a bucket lists pair by pair (TEXT_BUCKET_CAP).
    rng = random.Random(11)
    base = _sentence(rng, 40)
    texts = (
        [base] + [_edit(rng, base, 1) for _ in range(120)] + [_sentence(rng, 40) for _ in range(30)]
    )

    clusters = text_clusters(list(range(len(texts))), texts)

    assert {clusters.get(i) for i in range(121)} == {0}
    assert all(i not in clusters for i in range(121, len(texts)))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), order_seed=st.integers(0, 10_000))
def test_text_clusters_input_order_does_not_matter(seed, order_seed):
    rng = random.Random(seed)
    originals = [_sentence(rng, 20) for _ in range(15)]
    texts = originals + [_edit(rng, rng.choice(originals), rng.randint(1, 6)) for _ in range(15)]
    ids = rng.sample(range(1000), len(texts))
    order = list(range(len(texts)))
    random.Random(order_seed).shuffle(order)

    assert text_clusters(ids, texts) == text_clusters(
        [ids[i] for i in order], [texts[i] for i in order]
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"shingle_size": 0}, "shingle"),
        ({"num_perm": 1}, "num_perm"),
    ],
)
def test_text_clusters_bad_parameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        text_clusters([1], ["a"], **kwargs)


def test_text_clusters_empty_input_is_empty():
    assert text_clusters([], []) == {}


# ---------------------------------------------------------------------------- image


def _picture(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((128, 128), Image.Resampling.BICUBIC)


def test_image_clusters_phash_of_edited_picture_clustered_and_other_not():
    picture = _picture(1)
    edited = ImageEnhance.Brightness(picture.resize((100, 100))).enhance(1.1)
    hashes = [str(imagehash.phash(image)) for image in (picture, edited, _picture(2))]

    assert imagehash.hex_to_hash(hashes[0]) - imagehash.hex_to_hash(hashes[1]) <= 6
    assert image_clusters([1, 2, 3], hashes) == {1: 1, 2: 1}


def test_image_clusters_distance_bound_is_inclusive():
    base = 0x0123456789ABCDEF
    hashes = [
        _hex(base),
        _hex(_flip(base, [0, 9, 20, 31, 40, 50])),
        _hex(_flip(base, [1, 2, 3, 4, 5, 6, 7])),
    ]

    assert image_clusters([1, 2, 3], hashes) == {1: 1, 2: 1}
    assert image_clusters([1, 2, 3], hashes, max_distance=7) == {1: 1, 2: 1, 3: 1}
    assert image_clusters([1, 2, 3], hashes, max_distance=0) == {}


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    max_distance=st.integers(0, 12),
    n=st.integers(0, 80),
)
def test_image_clusters_equal_brute_force_components(seed, max_distance, n):
    rng = random.Random(seed)
    values: list[int] = []
    for _ in range(n):
        if values and rng.random() < 0.5:
            values.append(_flip(rng.choice(values), rng.sample(range(64), rng.randint(0, 10))))
        else:
            values.append(rng.getrandbits(64))
    ids = rng.sample(range(10_000), n)

    clusters = image_clusters(ids, [_hex(v) for v in values], max_distance=max_distance)

    # By hand: join every pair within the distance, then name by the smallest id.
    label = {i: i for i in ids}
    for a in range(n):
        for b in range(a + 1, n):
            if bin(values[a] ^ values[b]).count("1") <= max_distance:
                old, new = sorted((label[ids[a]], label[ids[b]]), reverse=True)
                label = {k: new if v == old else v for k, v in label.items()}
    expected = {i: c for i, c in label.items() if list(label.values()).count(c) >= 2}
    assert clusters == expected


def test_image_clusters_missing_phash_is_not_an_image():
    assert image_clusters([1, 2, 3], ["", None, "ffffffffffffffff"]) == {}


@pytest.mark.parametrize("bad", ["xyz", "ffff", "ffffffffffffffffff", "ffff ffffffffffff"])
def test_image_clusters_malformed_phash_raises(bad):
    with pytest.raises(ValueError, match="16 hex digits"):
        image_clusters([1], [bad])


def test_image_clusters_distance_out_of_range_raises():
    with pytest.raises(ValueError, match="distance"):
        image_clusters([1], ["0" * 16], max_distance=32)


# ---------------------------------------------------------------------------- merge


def test_merge_clusters_joins_transitively_with_reasons():
    report = merge_clusters({"exact": {1: 1, 2: 1}, "text": {2: 2, 3: 2, 8: 8, 9: 8}, "image": {}})

    assert report.clusters == (
        DuplicateCluster(cluster_id=1, members=(1, 2, 3), reasons=("exact", "text")),
        DuplicateCluster(cluster_id=8, members=(8, 9), reasons=("text",)),
    )
    assert report.mapping() == {1: 1, 2: 1, 3: 1, 8: 8, 9: 8}


def test_merge_clusters_unknown_reason_raises():
    with pytest.raises(ValueError, match="unknown reasons"):
        merge_clusters({"vibes": {1: 1, 2: 1}})  # type: ignore[dict-item]


def test_find_clusters_merges_every_kind_given():
    rng = random.Random(2)
    text = _sentence(rng)
    report = find_clusters(
        [1, 2, 3, 4],
        sha256=["s1", "s2", "s1", "s4"],
        texts=[text, _edit(rng, text, 2), "other words entirely", "more other words"],
    )

    assert report.clusters == (
        DuplicateCluster(cluster_id=1, members=(1, 2, 3), reasons=("exact", "text")),
    )


def test_find_clusters_needs_some_evidence():
    with pytest.raises(ValueError, match="needs"):
        find_clusters([1])


def test_clusters_crossing_lists_leaks_in_member_order():
    splits = pd.Series({1: "test", 2: "train", 3: "train", 4: "validation"})

    crossing = clusters_crossing({1: 1, 2: 1, 3: 3, 4: 3, 99: 3}, splits)

    assert crossing == [
        ClusterCrossing(cluster_id=1, members=(1, 2), splits=("test", "train")),
        ClusterCrossing(cluster_id=3, members=(3, 4), splits=("train", "validation")),
    ]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), strategy=st.sampled_from(["random", "stratified"]))
def test_clusters_crossing_empty_after_assign_splits_with_found_clusters(seed, strategy):
    rng = random.Random(seed)
    originals = [_sentence(rng, 20) for _ in range(30)]
    texts = originals + [_edit(rng, rng.choice(originals), rng.randint(0, 3)) for _ in range(30)]
    ids = list(range(len(texts)))
    report = find_clusters(ids, texts=texts)
    items = pd.DataFrame({"item_id": ids, "label": [rng.choice("ab") for _ in ids]})

    splits = assign_splits(
        items, SplitSpec(seed=seed, strategy=strategy), clusters=report.mapping()
    )

    assert report.clusters
    assert clusters_crossing(report, splits) == []


# ---------------------------------------------------------------------- cross-version


def test_cross_version_matches_text_exact_and_near_and_none_for_unrelated():
    rng = random.Random(4)
    shared, near, alone = _sentence(rng), _sentence(rng), _sentence(rng)
    a_texts = [shared.upper(), _edit(rng, near, 2), alone]
    b_texts = [_sentence(rng), shared, near, near]

    matches = cross_version_matches([10, 11, 12], a_texts, [20, 21, 22, 23], b_texts, kind="text")

    assert [(m.a_id, m.b_id, m.reason) for m in matches] == [
        (10, 21, "text"),
        (11, 22, "text"),
        (11, 23, "text"),
    ]
    assert matches[0].score == 1.0
    assert 0.8 <= matches[1].score < 1.0


def test_cross_version_matches_images_within_distance_with_similarity_score():
    base = 0xFEDCBA9876543210
    a = [_hex(base), _hex(0)]
    b = [_hex(_flip(base, [3, 33])), _hex(_flip(0, list(range(20))))]

    matches = cross_version_matches([1, 2], a, [7, 8], b, kind="image")

    assert matches == [Match(1, 7, 1 - 2 / 64, "image")]


def test_cross_version_matches_exact_keys():
    matches = cross_version_matches([1, 2], ["k", None], [5, 6], ["k", None], kind="exact")

    assert matches == [Match(1, 5, 1.0, "exact")]


def test_cross_version_matches_empty_sides_are_empty():
    assert cross_version_matches([], [], [1], ["text here"], kind="text") == []
    assert cross_version_matches([1], ["0" * 16], [], [], kind="image") == []


def test_cross_version_matches_unknown_kind_raises():
    with pytest.raises(ValueError, match="unknown kind"):
        cross_version_matches([1], ["a"], [2], ["a"], kind="audio")  # type: ignore[arg-type]


def test_cross_matches_one_match_per_pair_exact_first():
    rng = random.Random(6)
    text = _sentence(rng)

    matches = cross_matches(
        [1, 2],
        [3, 4],
        a_sha256=["s", "t"],
        b_sha256=["s", "u"],
        a_texts=[text, _edit(rng, text, 1)],
        b_texts=[text, "nothing alike at all here"],
    )

    assert [(m.a_id, m.b_id, m.reason) for m in matches] == [(1, 3, "exact"), (2, 3, "text")]


def test_cross_matches_evidence_for_one_side_only_raises():
    with pytest.raises(ValueError, match="one version only"):
        cross_matches([1], [2], a_texts=["a"])
