"""The versioned model registry: every promoted model kept, with its card, and a `current`
pointer that says which one is deployed.

Layout of a registry folder (default `deploy/registry/`, git-ignored; the committed `models/`
is never written: it only seeds an empty registry as version 1)::

    versions/v0001/  face_sentiment_int8.tflite, face_sentiment.keras, model_card.json/.md,
                     decision.json (the record that promoted it; absent for the seed)
    versions/v0002/  ...
    current.json     {"version": "v0002", "fingerprint": ..., "stack": ["v0001", "v0002"]}
    events.jsonl     one line per seed, promotion and rollback

A version folder is filled under a temporary name and renamed into place, and `current.json`
is replaced atomically, so a reader (the deploy step, a person) never sees half a version or
half a pointer. `stack` is the order in which versions became current: `rollback` pops it, so
rolling back twice goes back two promotions. Adding a model whose card fingerprint a version
already has returns that version (a rerun of a promotion adds nothing).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from face_sentiment.model_card import CARD_FILE, SHIPPED_KERAS, SHIPPED_MODEL, ModelCard
from face_sentiment.model_of_record import (
    CURRENT_FILE,
    VERSIONS_DIR,
    RecordError,
    read_pointer,
    registry_folder,
)
from face_sentiment.paths import write_atomic

EVENTS_FILE = "events.jsonl"
# What a version holds: the deployed int8 model and its card are required; the float model
# (the next fine-tune starts from it), the card's Markdown and the decision record travel along.
REQUIRED_FILES = (SHIPPED_MODEL, CARD_FILE)
OPTIONAL_FILES = (SHIPPED_KERAS, "model_card.md", "decision.json", "training_history.csv")


class RegistryError(RecordError):
    """The registry is empty, inconsistent, or cannot do what was asked (message says why)."""


@dataclass(frozen=True)
class Version:
    """One registered model: its folder, name (v0001...) and card."""

    name: str
    folder: Path

    @property
    def card(self) -> ModelCard:
        return ModelCard.load(self.folder / CARD_FILE)

    @property
    def fingerprint(self) -> str:
        return self.card.fingerprint

    @property
    def model_file(self) -> Path:
        return self.folder / SHIPPED_MODEL

    @property
    def keras_file(self) -> Path:
        return self.folder / SHIPPED_KERAS


def default_registry() -> Path:
    """deploy/registry under the project root (FACE_SENTIMENT_REGISTRY overrides it); the
    model of record (face_sentiment.model_of_record) reads the same folder."""
    return registry_folder()


class Registry:
    """A registry folder (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        self.folder = Path(folder) if folder else default_registry()
        self.versions_dir = self.folder / VERSIONS_DIR

    # -- reading ------------------------------------------------------------------------

    def versions(self) -> list[Version]:
        if not self.versions_dir.is_dir():
            return []
        return [Version(p.name, p) for p in sorted(self.versions_dir.glob("v[0-9][0-9][0-9][0-9]"))
                if p.is_dir()]

    def pointer(self) -> dict | None:
        try:
            return read_pointer(self.folder)
        except RecordError as error:
            raise RegistryError(str(error)) from error

    def current(self) -> Version:
        """The current (champion) version; RegistryError when the registry is empty."""
        pointer = self.pointer()
        if pointer is None:
            raise RegistryError(f"registry {self.folder} has no current model: seed it "
                                "(`face-sentiment retrain` seeds it from models/) first")
        return self.version(pointer["version"])

    def version(self, name: str) -> Version:
        folder = self.versions_dir / name
        if not (folder / CARD_FILE).is_file() or not (folder / SHIPPED_MODEL).is_file():
            raise RegistryError(f"registry version {folder} is missing or incomplete "
                                f"(needs {', '.join(REQUIRED_FILES)})")
        return Version(name, folder)

    def find(self, fingerprint: str) -> Version | None:
        return next((v for v in self.versions() if v.fingerprint == fingerprint), None)

    def events(self) -> list[dict]:
        path = self.folder / EVENTS_FILE
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    # -- writing ------------------------------------------------------------------------

    def add(self, source: str | os.PathLike, decision: dict | None = None) -> Version:
        """Register the model in folder `source` (int8 model + card, optionally the Keras
        model and card Markdown) as a new version, or return the version that already holds a
        model with the same card fingerprint. Does not make it current (`promote` does)."""
        source = Path(source)
        for name in REQUIRED_FILES:
            if not (source / name).is_file():
                raise RegistryError(f"{source}: no {name}; a registry version needs "
                                    f"{' and '.join(REQUIRED_FILES)}")
        card = ModelCard.load(source / CARD_FILE)
        existing = self.find(card.fingerprint)
        if existing is not None:
            return existing
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.versions_dir))
        try:
            for name in REQUIRED_FILES + OPTIONAL_FILES:
                if (source / name).is_file():
                    shutil.copyfile(source / name, staging / name)
            if decision is not None:
                write_atomic(staging / "decision.json", json.dumps(decision, indent=2) + "\n")
            staging.chmod(0o755)
            name = self._next_name()
            staging.rename(self.versions_dir / name)  # fails if a concurrent add took the name
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return Version(name, self.versions_dir / name)

    def promote(self, version: Version, reason: str) -> Version:
        """Make `version` current (pushed on the stack); a no-op when it already is."""
        pointer = self.pointer()
        stack = list(pointer["stack"]) if pointer else []
        if stack and stack[-1] == version.name:
            return version
        self._point(version, stack + [version.name], "promote" if stack else "seed", reason)
        return version

    def seed(self, source: str | os.PathLike) -> Version:
        """Register `source` (e.g. the committed models/, read only) as the first champion when
        the registry has none; the current version otherwise."""
        if self.pointer() is not None:
            return self.current()
        return self.promote(self.add(source), f"seeded from {Path(source).resolve()}")

    def rollback(self) -> Version:
        """Restore the version that was current before the current one."""
        pointer = self.pointer()
        if pointer is None or len(pointer["stack"]) < 2:
            raise RegistryError(f"registry {self.folder}: nothing to roll back to (the current "
                                "model is the first one)")
        stack = list(pointer["stack"][:-1])
        previous = self.version(stack[-1])
        self._point(previous, stack, "rollback", f"rolled back from {pointer['version']}")
        return previous

    def _point(self, version: Version, stack: list[str], event: str, reason: str) -> None:
        record = {"version": version.name, "fingerprint": version.fingerprint, "stack": stack,
                  "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        write_atomic(self.folder / CURRENT_FILE, json.dumps(record, indent=2) + "\n")
        with open(self.folder / EVENTS_FILE, "a") as stream:
            stream.write(json.dumps({"event": event, "reason": reason, **record}) + "\n")

    def _next_name(self) -> str:
        numbers = [int(v.name[1:]) for v in self.versions()]
        return f"v{max(numbers, default=0) + 1:04d}"
