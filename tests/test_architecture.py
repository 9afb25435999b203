"""The layering in ARCHITECTURE.md holds in the source, read statically with ``ast``.

  core <- provenance <- annotation <- ml <- datasheets <- demo <- config

An app imports only apps below it, and from them only ``services``, ``selectors``,
``models`` and ``signals`` (a higher app connects receivers to a lower app's signals).
``core`` is the shared kernel (base models, error type, API plumbing) and may be imported
whole; ``config`` wires everything and may import anything. The pure cores
(``annotation.agreement``, ``ml.engine``) and the pure rule modules (``annotation.schemas``,
``annotation.surveys``, ``provenance.licenses``) import no framework and no Django-backed
module, so any app may use them as plain libraries. Imports inside functions and under
``TYPE_CHECKING`` count too. import-linter checks the same layers, transitively.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
APPS_BOTTOM_UP = ("core", "provenance", "annotation", "ml", "datasheets", "demo", "config")
LAYER = {app: rank for rank, app in enumerate(APPS_BOTTOM_UP)}
# What a higher app may import from a lower one. ``ingest`` and ``analysis`` are the
# annotation app's service packages for imports and agreement analyses (writes and reads of
# their own concern, kept out of ``services`` so labeling never loads pandas or Pillow's
# whole pipeline); the demo imports items and computes analyses through them.
PUBLIC_MODULES = frozenset({"services", "selectors", "models", "signals", "ingest", "analysis"})
SHARED_KERNEL = "core"
WIRING = "config"
# Pure modules: no framework, no Django-backed import; any higher app may use them.
PURE_CORES = (
    # CSV cells defused against formulas: shared by reports (core) and bundles (ml.engine).
    "core.csv",
    "annotation.agreement",
    "ml.engine",
    "annotation.schemas",
    "annotation.surveys",
    "provenance.licenses",
)
FRAMEWORKS = frozenset({"django", "celery", "kombu", "rest_framework", "drf_spectacular"})
# annotation.tasks runs their work (importing them inside its tasks); they enqueue its tasks
# by registered name (annotation.task_names), so importing it back would be a cycle.
ENQUEUE_BY_NAME = ("annotation.ingest", "annotation.analysis")
TASKS_MODULE = "annotation.tasks"


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path.relative_to(REPO_ROOT)}:{self.line}: {self.source} -> {self.target}"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def collect_imports(path: Path, root: Path = REPO_ROOT) -> Iterator[Import]:
    """Every import in ``path`` as an absolute dotted target.

    ``from a.b import c`` yields ``a.b.c`` (``c`` may be a submodule or a name; both are
    reached through ``a.b``). Relative imports are resolved against the module's package.
    """
    source = _module_name(path, root)
    package = source.split(".") if path.name == "__init__.py" else source.split(".")[:-1]
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(source, alias.name, path, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                target = base if alias.name == "*" else f"{base}.{alias.name}"
                yield Import(source, target, path, node.lineno)


def _python_files(package: str) -> list[Path]:
    directory = REPO_ROOT.joinpath(*package.split("."))
    if directory.is_dir():
        return sorted(directory.rglob("*.py"))
    module_file = directory.with_suffix(".py")
    return [module_file] if module_file.is_file() else []


def _imports_of(package: str) -> list[Import]:
    return [found for path in _python_files(package) for found in collect_imports(path)]


def _is_migration(found: Import) -> bool:
    return "migrations" in found.source.split(".")


def _pure_core_of(module: str) -> str | None:
    return next((core for core in PURE_CORES if _within(module, core)), None)


def _first_party_app(target: str) -> str | None:
    top = target.split(".")[0]
    return top if top in LAYER else None


@pytest.mark.parametrize("app", APPS_BOTTOM_UP)
def test_app_imports_first_party_apps_only_at_or_below_its_layer(app: str) -> None:
    if not _python_files(app):
        pytest.skip(f"{app} does not exist yet")
    upward = [
        found
        for found in _imports_of(app)
        if (target_app := _first_party_app(found.target)) and LAYER[target_app] > LAYER[app]
    ]
    assert not upward, "imports point up the layers:\n" + "\n".join(map(str, upward))


@pytest.mark.parametrize("app", [app for app in APPS_BOTTOM_UP if app not in {WIRING}])
def test_app_imports_from_lower_apps_only_public_modules_or_pure_cores(app: str) -> None:
    if not _python_files(app):
        pytest.skip(f"{app} does not exist yet")
    violations = []
    for found in _imports_of(app):
        target_app = _first_party_app(found.target)
        if target_app in {None, app, SHARED_KERNEL} or _is_migration(found):
            continue
        parts = found.target.split(".")
        is_public = len(parts) > 1 and parts[1] in PUBLIC_MODULES
        if not is_public and _pure_core_of(found.target) is None:
            violations.append(found)
    assert not violations, (
        f"reach into lower apps only through {sorted(PUBLIC_MODULES)}:\n"
        + "\n".join(map(str, violations))
    )


@pytest.mark.parametrize("pure_core", PURE_CORES)
def test_pure_core_imports_neither_frameworks_nor_django_backed_modules(pure_core: str) -> None:
    if not _python_files(pure_core):
        pytest.skip(f"{pure_core} does not exist yet")
    violations = [
        found
        for found in _imports_of(pure_core)
        if found.target.split(".")[0] in FRAMEWORKS
        or (_first_party_app(found.target) and _pure_core_of(found.target) is None)
    ]
    assert not violations, (
        f"{pure_core} must stay importable without Django or Celery:\n"
        + "\n".join(map(str, violations))
    )


@pytest.mark.parametrize("package", ENQUEUE_BY_NAME)
def test_task_callers_never_import_the_tasks_module(package: str) -> None:
    assert _python_files(package), f"{package} is missing from the checkout"
    back = [found for found in _imports_of(package) if _within(found.target, TASKS_MODULE)]
    assert not back, f"{package} must enqueue by task name, not import {TASKS_MODULE}:\n" + (
        "\n".join(map(str, back))
    )


def test_layer_list_every_app_exists_in_checkout() -> None:
    # Guards the skips above: a renamed app must not turn its checks into silent skips.
    missing = [app for app in APPS_BOTTOM_UP if not _python_files(app)]
    assert not missing, f"apps missing from the checkout: {missing}"


def test_collect_imports_relative_from_import_resolves_against_the_package(
    tmp_path: Path,
) -> None:
    package = tmp_path / "ml" / "engine"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from .heads import Head\n")
    (package / "train.py").write_text(
        "from . import heads\nfrom ..models import Run\nimport numpy as np\n"
    )

    init_targets = [found.target for found in collect_imports(package / "__init__.py", tmp_path)]
    train_targets = [found.target for found in collect_imports(package / "train.py", tmp_path)]

    assert init_targets == ["ml.engine.heads.Head"]
    assert train_targets == ["ml.engine.heads", "ml.models.Run", "numpy"]


def test_collect_imports_nested_and_type_checking_imports_are_found(tmp_path: Path) -> None:
    module = tmp_path / "provenance" / "services.py"
    module.parent.mkdir()
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from annotation.models import Item\n"
        "def f() -> None:\n"
        "    import ml.tasks\n"
    )

    targets = {found.target for found in collect_imports(module, tmp_path)}

    assert {"annotation.models.Item", "ml.tasks"} <= targets


TEMPLATE_REFERENCE = re.compile(r"""{%\s*(?:include|extends)\s+["']([a-z_]+)/""")


@pytest.mark.parametrize("app", [app for app in APPS_BOTTOM_UP if app != WIRING])
def test_app_templates_include_only_templates_of_their_app_or_lower(app: str) -> None:
    """Templates have layers too: a lower app's page may not include a higher app's."""
    templates = sorted((REPO_ROOT / app / "templates").glob("**/*.html"))
    if app == SHARED_KERNEL:
        templates += sorted((REPO_ROOT / "templates").glob("**/*.html"))
    violations = [
        f"{path.relative_to(REPO_ROOT)} -> {target}/"
        for path in templates
        for target in TEMPLATE_REFERENCE.findall(path.read_text())
        if target in LAYER and LAYER[target] > LAYER[app]
    ]

    assert not violations, violations


def test_web_start_up_loads_no_deep_learning_library() -> None:
    """torch takes a second to import and sentence-transformers ten: every URL, view, API
    view and task module loads without them (the engine imports them inside functions)."""
    script = (
        "import sys, django; django.setup()\n"
        "import config.urls, ml.views, ml.api.training, ml.tasks, ml.training.params\n"
        "from ml.training.params import hyper_defaults; hyper_defaults('text')\n"
        "loaded = [m for m in ('torch', 'sentence_transformers', 'transformers') "
        "if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "CELERY_BROKER_URL")
    }
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONPATH": str(REPO_ROOT)},
    )

    assert result.stdout.strip() == "", f"web start-up imported {result.stdout.strip()}"
