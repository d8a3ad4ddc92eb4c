"""The package map holds: stages import only earlier stages, and live/ never imports TensorFlow.

Order: data <- model <- evaluation <- responsible <- monitoring <- features <- pipeline. `live`
is the Pi's runtime: it may import only preprocessing, labels, model_card, model_of_record,
paths, quality and energy from the rest of the package (any stage may use live). The feature
store (features) ingests the monitor's logs; the continual-training pipeline uses every stage
before it. The CLI and reports wire everything together and are exempt.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "face_sentiment"
STAGES = ("data", "model", "evaluation", "responsible", "monitoring", "features", "pipeline")
LIVE_ALLOWED = {"live", "preprocessing", "labels", "model_card", "model_of_record", "paths",
                "_lazy", "quality", "energy"}
EXEMPT = {"cli", "reports", "__main__"}


def _imported_parts(path: Path) -> set[str]:
    """First component after `face_sentiment.` of every import in a module (lazy ones too)."""
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            if node.module == "face_sentiment":
                names = [f"face_sentiment.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        parts |= {name.split(".")[1] for name in names
                  if name.startswith("face_sentiment.") and name.count(".") >= 1}
    return parts


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        yield (relative.parts[0] if len(relative.parts) > 1 else relative.stem), path


@pytest.mark.parametrize("owner,path", list(_modules()), ids=lambda v: str(v)[-40:])
def test_no_module_imports_a_later_stage(owner, path):
    imported = _imported_parts(path)
    if owner in EXEMPT:
        return
    if owner == "live":
        assert imported <= LIVE_ALLOWED, f"{path}: live imports {imported - LIVE_ALLOWED}"
        return
    later = set(STAGES[STAGES.index(owner) + 1:]) if owner in STAGES else set(STAGES)
    assert not imported & later, f"{path} ({owner}) imports later stage(s) {imported & later}"


def test_the_map_sees_imports():
    """Guard against a checker that passes because it parses nothing."""
    assert {"data", "model", "live"} <= _imported_parts(PACKAGE / "evaluation" / "release.py")


def test_live_modules_do_not_import_tensorflow():  # a subprocess: about 1 s
    modules = sorted(f"face_sentiment.live.{p.stem}" for p in (PACKAGE / "live").glob("*.py")
                     if p.stem != "__init__")
    assert len(modules) >= 10
    code = ("import sys, importlib, numpy as np\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "from face_sentiment.live.faces import create_detector\n"
            "create_detector('haar').detect(np.zeros((64, 64, 3), np.uint8))\n"
            "import face_sentiment\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


SUBPACKAGES = ("data", "model", "evaluation", "responsible", "live", "monitoring", "features",
               "pipeline")


@pytest.mark.slow
@pytest.mark.tensorflow
def test_each_subpackage_exports_its_api():
    """Every name a subpackage's __init__ lists resolves (imported on first use). One fresh
    interpreter for all of them: TensorFlow is imported once, not once per subpackage."""
    code = ("import importlib\n"
            "problems = {}\n"
            f"for package in {SUBPACKAGES!r}:\n"
            "    p = importlib.import_module(f'face_sentiment.{package}')\n"
            "    missing = [n for n in p.__all__ if getattr(p, n, None) is None]\n"
            "    if not p.__all__ or missing:\n"
            "        problems[package] = missing or 'empty __all__'\n"
            "assert not problems, problems\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


MAX_FUNCTION_LINES = 80  # McCabe complexity (at most 25) is ruff's C901, in `make lint`


def test_no_function_is_longer_than_80_lines():
    """A function a newcomer can read on one screen and a half: from `def` to its last line,
    nested functions counted in their parent."""
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} "
                                f"({lines} lines)")
    assert not long, "split these functions:\n" + "\n".join(long)
