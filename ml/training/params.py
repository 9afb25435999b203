"""What a researcher may ask of a training run, validated once.

The input (API body, form, command line), every field optional but the version::

    {
        "target": "majority",  # or "dawid_skene", "soft": must ship in the version
        "seed": 0,
        "device": "auto",  # "cpu", "cuda"
        "encoder": "minilm",  # text: a key of CHORUS_TEXT_ENCODERS;
        # image: "" (a CNN from scratch) or a key of
        # CHORUS_IMAGE_BACKBONES (transfer learning)
        "group_by": ["skin_tone", "gender"],  # item metadata keys: one, or two (their
        # intersection is reported too)
        "annotator_questions": ["gender"],  # survey questions to compare annotator groups on
        "min_group_size": 30,  # smaller groups are flagged
        "params": {
            "max_epochs": 50,
            "patience": 5,
            "batch_size": 64,
            "learning_rate": 0.001,
            "weight_decay": 0.01,
            "head": "linear",
            "hidden": 256,
            "dropout": 0.1,
            "image_size": 64,
            "augment": true,
        },
    }

``params`` defaults are the engine's (``ml.engine.training.config.TrainConfig``); bounds
are Chorus's. Keys that do not apply to the project's modality are refused, not ignored,
so that nobody believes they tuned something they did not.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from core.errors import ValidationFailed
from ml.fields import (
    FieldErrors,
    boolean,
    number,
    one_of,
    unknown_keys,
    whole_number,
)

if TYPE_CHECKING:
    from ml.engine.training.config import TrainConfig

CODE = "invalid_training_params"
TARGETS = ("majority", "dawid_skene", "soft")
DEVICES = ("auto", "cpu", "cuda")
HEADS = ("linear", "mlp")
MAX_GROUP_KEYS = 2
MAX_QUESTIONS = 10

# name -> (kind, low, high); "modality" says which projects take it.
_HYPER: dict[str, tuple[str, float, float, str]] = {
    "max_epochs": ("int", 1, 1000, "any"),
    "patience": ("int", 1, 100, "any"),
    "batch_size": ("int", 1, 8192, "any"),
    "learning_rate": ("float", 1e-6, 1.0, "any"),
    "weight_decay": ("float", 0.0, 1.0, "any"),
    "dropout": ("float", 0.0, 0.9, "any"),
    "head": ("head", 0, 0, "text"),
    "hidden": ("int", 8, 4096, "text"),
    "image_size": ("int", 16, 256, "image"),
    "augment": ("bool", 0, 0, "image"),
}


def hyper_defaults(modality: str) -> dict[str, Any]:
    """The engine's defaults of the hyperparameters a ``modality`` project takes."""
    from ml.engine.training.config import TrainConfig

    defaults = {f.name: f.default for f in fields(TrainConfig)}
    return {
        name: defaults[name]
        for name, (_kind, _low, _high, applies) in _HYPER.items()
        if applies in ("any", modality)
    }


@dataclass(frozen=True)
class RunParams:
    """A validated request, in the canonical form a ``TrainingRun`` row stores."""

    target: str = "majority"
    seed: int = 0
    device: str = "auto"
    encoder: str = ""
    group_by: tuple[str, ...] = ()
    annotator_questions: tuple[str, ...] = ()
    min_group_size: int = 30
    hyper: dict[str, Any] = field(default_factory=dict)

    def config(self, *, backbone_path: str | None = None) -> "TrainConfig":
        from ml.engine.training.config import TrainConfig

        return TrainConfig(
            seed=self.seed,
            device=self.device,
            backbone_path=backbone_path,
            **{k: v for k, v in self.hyper.items()},
        )

    def stored_params(self) -> dict[str, Any]:
        """``TrainingRun.params``: the hyperparameters and the group-size threshold."""
        return {**self.hyper, "min_group_size": self.min_group_size}


def _hyper(raw: object, modality: str, errors: FieldErrors) -> dict[str, Any]:
    values = hyper_defaults(modality)
    if raw is None:
        return values
    if not isinstance(raw, Mapping):
        errors.add("params", "Must be an object.")
        return values
    unknown_keys(raw, tuple(_HYPER), "params", errors)
    for name, value in raw.items():
        if name not in _HYPER:
            continue
        kind, low, high, applies = _HYPER[name]
        where = f"params.{name}"
        if applies not in ("any", modality):
            errors.add(where, f"Only {applies} projects take this.")
        elif kind == "int":
            values[name] = whole_number(value, where, errors, low=int(low), high=int(high))
        elif kind == "float":
            values[name] = number(value, where, errors, low=low, high=high)
        elif kind == "bool":
            values[name] = boolean(value, where, errors)
        else:
            values[name] = one_of(value, where, errors, allowed=HEADS)
    return values


def _strings(
    value: object, name: str, errors: FieldErrors, *, most: int, allowed: tuple[str, ...] | None
) -> tuple[str, ...]:
    if value is None:
        return ()
    if (
        not isinstance(value, list)
        or not all(isinstance(v, str) and 0 < len(v) <= 100 for v in value)
        or len(value) > most
    ):
        errors.add(name, f"Must be a list of at most {most} names.")
        return ()
    if len(set(value)) != len(value):
        errors.add(name, "Names a key twice.")
    if allowed is not None:
        unknown = [v for v in value if v not in allowed]
        if unknown:
            errors.add(
                name,
                f"Unknown {', '.join(map(repr, unknown))}; expected "
                f"{', '.join(allowed) or 'none (the project has no survey)'}.",
            )
    return tuple(value)


def run_params_from_json(
    raw: object,
    *,
    modality: str,
    shipped_targets: tuple[str, ...],
    questions: tuple[str, ...],
    encoders: tuple[str, ...],
    backbones: tuple[str, ...],
    default_encoder: str,
) -> RunParams:
    """Validate a run request for a project of ``modality`` trained on a version that ships
    ``shipped_targets``, whose survey asks ``questions``. Raises
    ``ValidationFailed(code="invalid_training_params")`` naming every problem in
    ``extra["fields"]``."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ValidationFailed("A training request must be a JSON object.", code=CODE)
    errors = FieldErrors(CODE)
    unknown_keys(
        raw,
        (
            "target",
            "seed",
            "device",
            "encoder",
            "group_by",
            "annotator_questions",
            "min_group_size",
            "params",
        ),
        "",
        errors,
    )
    target = one_of(raw.get("target", "majority"), "target", errors, allowed=TARGETS)
    if target not in shipped_targets and "target" not in errors.fields:
        errors.add(
            "target",
            f"The dataset version does not ship {target!r} labels (it ships "
            f"{', '.join(shipped_targets) or 'no aggregated labels'}).",
        )
    seed = whole_number(raw.get("seed", 0), "seed", errors, low=0, high=2**31 - 1)
    device = one_of(raw.get("device", "auto"), "device", errors, allowed=DEVICES)
    if modality == "text":
        encoder = one_of(
            raw.get("encoder", default_encoder) or default_encoder,
            "encoder",
            errors,
            allowed=encoders,
        )
    else:
        encoder = str(raw.get("encoder") or "")
        if encoder:
            encoder = one_of(encoder, "encoder", errors, allowed=backbones or ("",))
    group_by = _strings(raw.get("group_by"), "group_by", errors, most=MAX_GROUP_KEYS, allowed=None)
    annotator_questions = _strings(
        raw.get("annotator_questions"),
        "annotator_questions",
        errors,
        most=MAX_QUESTIONS,
        allowed=questions,
    )
    min_group_size = whole_number(
        raw.get("min_group_size", 30), "min_group_size", errors, low=1, high=100_000
    )
    hyper = _hyper(raw.get("params"), modality, errors)
    errors.raise_if_any()
    return RunParams(
        target=target,
        seed=seed,
        device=device,
        encoder=encoder,
        group_by=group_by,
        annotator_questions=annotator_questions,
        min_group_size=min_group_size,
        hyper=hyper,
    )
