"""The real `fer` package (its own code, from its wheel) in a child process, for tests that make
the same calls on it and on `FaceSentiment`.

fer imports TensorFlow, but with `use_tflite=True` (its default) it uses nothing of it but
`tf.lite.Interpreter`, and it finds its data files with pkg_resources (gone from setuptools
>= 81). The child gets stand-ins for both: LiteRT's `Interpreter` (the same TFLite runtime) and
a `resource_filename` into the unpacked wheel; requests and Pillow (imported by fer.utils, used
only for URLs) get empty stand-ins where they are not installed. Everything else is fer's.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

_CHILD = r"""
import importlib, pickle, sys, types
from pathlib import Path

folder, calls_file, answers_file = sys.argv[1:4]
sys.path.insert(0, folder)


def stand_in(name, **attributes):
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    sys.modules[name] = module
    return module


from ai_edge_litert.interpreter import Interpreter


def no_keras(*args, **kwargs):
    raise RuntimeError("the Keras model needs TensorFlow: use_tflite=True")


tf = stand_in("tensorflow", lite=types.SimpleNamespace(Interpreter=Interpreter))
tf.keras = stand_in("tensorflow.keras")
tf.keras.models = stand_in("tensorflow.keras.models", load_model=no_keras)
try:
    import pkg_resources  # noqa: F401
except ImportError:
    stand_in("pkg_resources", resource_filename=lambda package, name: str(
        Path(importlib.import_module(package).__file__).parent / name))
for name in ("requests", "PIL"):
    try:
        importlib.import_module(name)
    except ImportError:
        stand_in(name, Image=None)

import fer  # noqa: E402
from fer.fer import FER  # noqa: E402

detector = FER()
answers = [getattr(detector, method)(*args, **kwargs)
           for method, args, kwargs in pickle.loads(Path(calls_file).read_bytes())]
Path(answers_file).write_bytes(pickle.dumps({"version": fer.__version__, "answers": answers}))
"""


def unpack(wheel: Path, folder: Path) -> Path:
    """The wheel's `fer/` package unpacked into `folder`."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(folder, [name for name in archive.namelist()
                                    if name.startswith("fer/")])
    return folder


def run_fer(wheel: Path, calls: list[tuple[str, tuple, dict]], work: Path) -> tuple[str, list]:
    """(fer's version, the answers of `FER().<method>(*args, **kwargs)` for each call)."""
    folder = unpack(wheel, work / "fer-package")
    calls_file, answers_file = work / "fer-calls.pickle", work / "fer-answers.pickle"
    calls_file.write_bytes(pickle.dumps(calls))
    result = subprocess.run([sys.executable, "-c", _CHILD, str(folder), str(calls_file),
                             str(answers_file)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    answers = pickle.loads(answers_file.read_bytes())
    return answers["version"], answers["answers"]
