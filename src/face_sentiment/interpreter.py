"""One place that finds a TFLite interpreter and opens model files with clear errors.

The Pi has no TensorFlow: models run on `ai_edge_litert` (LiteRT, the successor package) or
`tflite_runtime`, whichever imports. A missing or corrupt model file becomes a
`ModelFileError` that names the file and says what to do, instead of a bare runtime error.
Only the standard library is imported here; the interpreter package is imported on first use.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

BACKENDS = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")
_FLATBUFFER_ID = b"TFL3"


class ModelFileError(RuntimeError):
    """A model file is missing, unreadable or not a TFLite flatbuffer."""


def interpreter_class() -> tuple[type, str]:
    """Return (Interpreter class, module name) of the first TFLite backend that imports."""
    errors = []
    for name in BACKENDS:
        try:
            module = importlib.import_module(name)
        except ImportError as error:
            errors.append(f"{name}: {error}")
            continue
        return module.Interpreter, name
    raise ImportError(
        "no TFLite interpreter found; install one of them: `pip install ai-edge-litert` "
        "(Python 3.9-3.12) or `pip install tflite-runtime` (Python <= 3.11). "
        + "; ".join(errors)
    )


def load_interpreter(model_path: str | Path, num_threads: int | None = 1) -> Any:
    """Open a .tflite file, allocate its tensors and return the interpreter.

    Raises ModelFileError when the file is missing, empty or not a valid TFLite model.
    """
    path = Path(model_path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    content = path.read_bytes()
    if len(content) < 8 or content[4:8] != _FLATBUFFER_ID:
        raise ModelFileError(
            f"{path} is not a TFLite model (no 'TFL3' flatbuffer identifier; truncated or "
            "corrupt copy?)"
        )
    interpreter_type, _ = interpreter_class()
    try:
        interpreter = interpreter_type(model_content=content, num_threads=num_threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        raise ModelFileError(f"{path} could not be loaded as a TFLite model: {error}") from error
    return interpreter
