"""Hot reload of the runner's model: a new model deployed beside the running one is picked up
between frames, without restarting and without dropping the stream.

`ModelWatcher.poll()` is called once per frame and costs a clock read; every `interval_s` it
stats the model card and the model file. When either changed, a background thread opens the
new pair as the runner would at start-up (`ExpressionClassifier(..., verify=True)`: the file
is first opened in a child process, so a truncated or corrupt model that would crash the TFLite
runtime only fails that child). The frame loop keeps running the old model meanwhile; the next
`poll()` after the thread finished hands over the new classifier, which the runner swaps in
between two frames. A model that fails to load is refused and logged once, and the old one
stays until a different file appears. Deploy writes the model first and the card last
(face_sentiment.pipeline.deploy), so the card changing means its model is in place.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from face_sentiment.live.classifier import ExpressionClassifier
from face_sentiment.model_card import CARD_FILE, ModelFileError
from face_sentiment.paths import file_sha256

log = logging.getLogger("face_sentiment.live.reload")


def _signature(paths: tuple[Path, ...]) -> tuple:
    """(mtime_ns, size) of each file, None for a missing one."""
    result = []
    for path in paths:
        try:
            info = os.stat(path)
            result.append((info.st_mtime_ns, info.st_size))
        except OSError:
            result.append(None)
    return tuple(result)


class ModelWatcher:
    """Watches a model file and its card; `poll()` returns a newly loaded classifier once."""

    def __init__(self, model_path: str | Path, card_path: str | Path | None = None,
                 num_threads: int | None = 1, interval_s: float = 2.0,
                 current_id: str | None = None,
                 locate: Callable[[], Path] | None = None) -> None:
        self.model_path = Path(model_path)
        self.card_path = Path(card_path) if card_path else self.model_path.with_name(CARD_FILE)
        self.num_threads, self.interval_s = num_threads, interval_s
        # A model given by name (`shipped-int8`) is located again at every check, so that a
        # promotion or rollback in the registry (a new current version folder) is followed.
        self.locate = locate
        self.paths = (self.model_path, self.card_path)
        self.seen = _signature(self.paths)
        self.current = (current_id, self._sha())
        self.next_check = time.monotonic() + interval_s
        self.reloads = self.refused = 0
        self.last_error: str | None = None
        self._thread: threading.Thread | None = None
        self._loaded: ExpressionClassifier | None = None
        self._loaded_key: tuple | None = None

    def _sha(self) -> str | None:
        try:
            return file_sha256(self.model_path)
        except OSError:
            return None

    def poll(self) -> ExpressionClassifier | None:
        """A new classifier to swap in now, or None (cheap unless a check is due)."""
        if self._thread is not None:
            if self._thread.is_alive():
                return None
            self._thread = None
            loaded, self._loaded = self._loaded, None
            if loaded is not None:
                self.current = self._loaded_key
                self.reloads += 1
                return loaded
        now = time.monotonic()
        if now < self.next_check:
            return None
        self.next_check = now + self.interval_s
        self._follow_record()
        signature = _signature(self.paths)
        if signature == self.seen:
            return None
        self.seen = signature
        if None in signature:
            return None  # a file is missing: keep the model in memory
        self._thread = threading.Thread(target=self._load, name="model-reload", daemon=True)
        self._thread.start()
        return None

    def _follow_record(self) -> None:
        """Point at the located model when it moved (the model of record changed)."""
        if self.locate is None:
            return
        try:
            located = Path(self.locate())
        except (OSError, ValueError) as error:  # an unreadable pointer: keep the model we have
            self.last_error = str(error)
            return
        if located != self.model_path:
            self.model_path = located
            self.card_path = located.with_name(CARD_FILE)
            self.paths = (self.model_path, self.card_path)
            self.seen = None  # whatever the new files' times, load them

    def _load(self) -> None:
        try:
            classifier = ExpressionClassifier(self.model_path, self.card_path,
                                              num_threads=self.num_threads, verify=True)
            key = (classifier.model_id, self._sha())
        except (ModelFileError, OSError, ValueError) as error:
            self.refused += 1
            self.last_error = str(error)
            log.error("new model refused, keeping %s: %s", self.current[0], error)
            return
        if key == self.current:
            return  # touched, not changed
        self._loaded, self._loaded_key = classifier, key

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=30)
