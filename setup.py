"""Build hooks only: the metadata is in pyproject.toml.

A wheel carries the shipped int8 model and its card: `build_py` copies
models/face_sentiment_int8.tflite and models/model_card.json (and model_card.md) into the
package as face_sentiment/shipped/, where `model_card.shipped_folder` finds them when there is
no models/ checkout (`face-sentiment predict`, `FaceSentiment()`). `sdist` adds the same files to
the source archive, so a wheel built from it carries them too. Editable installs copy nothing:
they read models/ in the checkout. Nothing is ever written into src/.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
MODELS = ROOT / "models"
REQUIRED = ("face_sentiment_int8.tflite", "model_card.json")
OPTIONAL = ("model_card.md",)
PACKAGED = Path("face_sentiment") / "shipped"  # model_card.PACKAGED_MODELS


def shipped_files() -> list[Path]:
    missing = [name for name in REQUIRED if not (MODELS / name).is_file()]
    if missing:
        raise SystemExit(f"{MODELS / missing[0]} is missing: the wheel carries the shipped "
                         "int8 model and its card (`make ship` trains, exports and ships them)")
    return [MODELS / name for name in REQUIRED + OPTIONAL if (MODELS / name).is_file()]


class BuildPyWithModel(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / PACKAGED
        self.mkpath(str(target))
        for source in shipped_files():
            self.copy_file(str(source), str(target / source.name))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        if self.editable_mode:
            return outputs
        return outputs + [str(Path(self.build_lib) / PACKAGED / source.name)
                          for source in shipped_files()]


class SdistWithModel(sdist):
    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        target = Path(base_dir) / "models"
        self.mkpath(str(target))
        for source in shipped_files():
            self.copy_file(str(source), str(target / source.name))


setup(cmdclass={"build_py": BuildPyWithModel, "sdist": SdistWithModel})
