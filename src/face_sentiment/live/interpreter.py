"""One place that finds a TFLite interpreter and opens model files with clear errors.

The Pi has no TensorFlow: models run on `ai_edge_litert` (LiteRT, the successor package) or
`tflite_runtime`, whichever imports, LiteRT first: its default XNNPACK delegate also runs int8
models (tflite-runtime 2.14's runs only float ones), which measured 2.2x faster for ours.
A missing or corrupt model file becomes a `ModelFileError` that names the file and says what
to do, instead of a bare runtime error. The TFLite runtimes do not verify a flatbuffer before
using it, and a truncated or damaged file can crash the whole process (segmentation fault), so
files that did not ship inside a package are first opened in a short-lived child process
(`verify=True`): if that child dies, the error is reported and the runner is still alive to
say so. numpy and the standard library only; the interpreter package is imported on first use.
`latency_ms` is the one latency timer for a model file (export, release and the benchmarks);
`invoke_per_face` the one loop that runs a model on faces one invoke each (as fer does).
"""

from __future__ import annotations

import contextvars
import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from face_sentiment.model_card import ModelFileError

# Interpreter module -> its pip package, in order of preference.
RUNTIME_PACKAGES = {"ai_edge_litert.interpreter": "ai-edge-litert",
                    "tflite_runtime.interpreter": "tflite-runtime"}
BACKENDS = tuple(RUNTIME_PACKAGES)
_FLATBUFFER_ID = b"TFL3"


# Set to 1 (the CLI does unless --verbose) to hide the runtime's C++ start-up lines.
QUIET_ENV = "FACE_SENTIMENT_QUIET"
# Set by `runtime_quiet` (FaceSentiment does by default): the same, for one block of code.
_QUIET = contextvars.ContextVar("face_sentiment_quiet_runtime", default=False)


@contextmanager
def runtime_quiet(enabled: bool = True) -> Iterator[None]:
    """Interpreters opened in this block hide the runtime's C++ start-up lines (as QUIET_ENV)."""
    token = _QUIET.set(enabled or _QUIET.get())
    try:
        yield
    finally:
        _QUIET.reset(token)


def runtime_is_quiet() -> bool:
    return _QUIET.get() or os.environ.get(QUIET_ENV) == "1"


@contextmanager
def native_stderr_silenced(enabled: bool = True) -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: the TFLite runtime prints 'INFO: Created TensorFlow
    Lite XNNPACK delegate' from C++ when an interpreter starts, past Python's control."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    try:
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except OSError:
        yield
        return
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def interpreter_class(backend: str | None = None) -> tuple[type, str]:
    """Return (Interpreter class, module name) of `backend`, or of the first one that imports."""
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"unknown TFLite backend {backend!r}; choose from {BACKENDS}")
    errors = []
    for name in (backend,) if backend else BACKENDS:
        try:
            module = importlib.import_module(name)
        except ImportError as error:
            errors.append(f"{name}: {error}")
            continue
        return module.Interpreter, name
    raise ImportError(
        "no TFLite interpreter found; install one of them: `pip install ai-edge-litert` "
        "(2.3: Python 3.10-3.14) or `pip install tflite-runtime` (Python <= 3.11). "
        + "; ".join(errors)
    )


def available_backends() -> list[str]:
    """Module names of the installed TFLite runtimes, in order of preference."""
    found = []
    for name in BACKENDS:
        try:
            interpreter_class(name)
        except ImportError:
            continue
        found.append(name)
    return found


def runtime_name(backend: str | None = None) -> str:
    """'package version' of a backend (default: the one `load_interpreter` uses)."""
    from importlib.metadata import version

    module = interpreter_class(backend)[1]
    package = RUNTIME_PACKAGES[module]
    return f"{package} {version(package)}"


_PROBE = """
import importlib, sys
module = importlib.import_module(sys.argv[1])
interpreter = module.Interpreter(model_path=sys.argv[2], num_threads=1)
interpreter.allocate_tensors()
for detail in interpreter.get_input_details() + interpreter.get_output_details():
    interpreter.tensor(detail["index"])
interpreter.invoke()
"""


def verify_model_file(path: str | Path, timeout_s: float = 120.0,
                      backend: str | None = None) -> None:
    """Open, allocate and invoke the model once in a child process; ModelFileError if it fails.

    Costs one interpreter start-up (well under a second on x86, a second or two on a Pi).
    """
    _, backend = interpreter_class(backend)
    try:
        result = subprocess.run([sys.executable, "-c", _PROBE, backend, str(path)],
                                capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as error:
        raise ModelFileError(f"{path}: opening the model took over {timeout_s:.0f} s") from error
    if result.returncode != 0:
        how = (f"crashed the TFLite runtime (signal {-result.returncode})"
               if result.returncode < 0 else "could not be loaded")
        detail = (result.stderr.strip().splitlines() or [""])[-1]
        raise ModelFileError(f"{path} {how}: truncated or corrupt model file? {detail}".strip())


# The runtimes' kernel choices: "default" lets the runtime apply its default delegate (XNNPACK
# in LiteRT), "builtin" runs its own kernels only (the self-test's fallback, live.self_test).
KERNELS = {"default": "AUTO", "builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES"}


def load_interpreter(model_path: str | Path, num_threads: int | None = 1,
                     verify: bool = False, backend: str | None = None,
                     kernels: str = "default") -> Any:
    """Open a .tflite file, allocate its tensors and return the interpreter.

    Raises ModelFileError when the file is missing, empty or not a valid TFLite model;
    `verify` first opens it in a child process, so that even a file that would crash the
    runtime gives an error instead.
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
    if verify:
        verify_model_file(path, backend=backend)
    if kernels not in KERNELS:
        raise ValueError(f"unknown kernels {kernels!r}; choose from {tuple(KERNELS)}")
    interpreter_type, module = interpreter_class(backend)
    resolver = getattr(importlib.import_module(module).OpResolverType, KERNELS[kernels])
    try:
        with native_stderr_silenced(runtime_is_quiet()):
            interpreter = interpreter_type(model_content=content, num_threads=num_threads,
                                           experimental_op_resolver_type=resolver)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        raise ModelFileError(f"{path} could not be loaded as a TFLite model: {error}") from error
    return interpreter


def invoke_per_face(interpreter: Any, inputs: np.ndarray, input_index: int | None = None,
                    output_index: int | None = None) -> np.ndarray:
    """(N, outputs) float32: the first output for each of `inputs` (N preprocessed faces, in
    the model's input type), one invoke per face. Give the tensor indices when they are
    already known (a timed pipeline), else the first input and output are used."""
    if input_index is None:
        input_index = interpreter.get_input_details()[0]["index"]
    if output_index is None:
        output_index = interpreter.get_output_details()[0]["index"]
    out = []
    for face in inputs:
        interpreter.set_tensor(input_index, face[np.newaxis])
        interpreter.invoke()
        out.append(interpreter.get_tensor(output_index)[0].copy())
    width = len(out[0]) if out else interpreter.get_tensor(output_index).shape[-1]
    return np.array(out, np.float32).reshape(-1, width)


def latency_samples(model_path: str | Path, sample: np.ndarray, threads: int = 1,
                    runs: int = 300, warmup: int = 30, backend: str | None = None
                    ) -> np.ndarray:
    """Per-invoke latencies (ms) of a TFLite model, batch 1: `runs` timed invokes after
    `warmup` untimed ones. `sample` is a preprocessed float input; integer models get it
    quantised with their own input parameters."""
    import time

    from face_sentiment.live.classifier import quantize

    interpreter = load_interpreter(model_path, num_threads=threads, backend=backend)
    detail = interpreter.get_input_details()[0]
    batch = quantize(np.asarray(sample[:1], np.float32), detail)
    timings = []
    for run in range(warmup + runs):
        started = time.perf_counter()
        interpreter.set_tensor(detail["index"], batch)
        interpreter.invoke()
        if run >= warmup:
            timings.append((time.perf_counter() - started) * 1000)
    return np.asarray(timings)


def latency_ms(model_path: str | Path, sample: np.ndarray, threads: int = 1, runs: int = 300,
               warmup: int = 30, backend: str | None = None) -> dict[str, float]:
    """p50 and p95 of `latency_samples`: the one latency figure of a model file."""
    p50, p95 = np.percentile(latency_samples(model_path, sample, threads, runs, warmup, backend),
                             [50, 95])
    return {"p50_ms": float(p50), "p95_ms": float(p95)}
