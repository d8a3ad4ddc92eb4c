"""One model of record: the registry's current version, else models/, for every consumer.

A promotion and a rollback in the registry change what `shipped`/`shipped-int8` resolve to,
what `predict` and the Python API run, what `ab-test` compares, what the monitor's reference
predictions use, the runner's default, and (between frames) the model a running runner holds.
"""

import json
import shutil
import time
from pathlib import Path

import pytest
from helpers import REAL_MODELS

from face_sentiment.model_card import CARD_FILE, SHIPPED_MODEL, resolve_model
from face_sentiment.model_of_record import RecordError, current_folder, registry_current
from face_sentiment.pipeline.registry import Registry

PREVIOUS = REAL_MODELS / "teachers" / "ensemble-v1"  # the model shipped before the current one


def _model_folder(tmp_path: Path, name: str, source: Path) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for file in (SHIPPED_MODEL, CARD_FILE):
        shutil.copy(source / file, folder / file)
    return folder


@pytest.fixture
def registry(tmp_path, monkeypatch) -> Registry:
    """A registry seeded with the shipped model, named by $FACE_SENTIMENT_REGISTRY."""
    folder = tmp_path / "registry"
    monkeypatch.setenv("FACE_SENTIMENT_REGISTRY", str(folder))
    registry = Registry()
    registry.seed(_model_folder(tmp_path, "shipped", REAL_MODELS))
    return registry


def test_without_a_registry_the_record_is_models(project_root):
    assert registry_current() is None
    assert current_folder() == project_root / "models"


def test_promotion_and_rollback_move_the_record(tmp_path, registry):
    seed = registry.current()
    assert current_folder() == seed.folder
    assert resolve_model("shipped-int8") == seed.folder / SHIPPED_MODEL

    promoted = registry.promote(registry.add(_model_folder(tmp_path, "previous", PREVIOUS)),
                                reason="test")
    assert current_folder() == promoted.folder != seed.folder
    assert resolve_model("shipped-int8") == promoted.folder / SHIPPED_MODEL

    registry.rollback()
    assert resolve_model("shipped-int8") == seed.folder / SHIPPED_MODEL


def test_a_pointer_naming_a_missing_version_is_an_error_naming_both(registry):
    (registry.folder / "current.json").write_text(json.dumps({"version": "v0042",
                                                              "stack": ["v0042"]}))
    with pytest.raises(RecordError, match=r"current\.json names version v0042.*does not exist"):
        current_folder()
    (registry.folder / "current.json").write_text("{not json")
    with pytest.raises(RecordError, match="not valid JSON"):
        resolve_model("shipped-int8")


def test_every_consumer_follows_a_promotion(tmp_path, registry):
    from face_sentiment.evaluation.predictors import load_predictor
    from face_sentiment.live.analyzer import FaceSentiment
    from face_sentiment.live.classifier import ExpressionClassifier
    from face_sentiment.live.reload import ModelWatcher
    from face_sentiment.live.runner import default_model
    from face_sentiment.monitoring.reference import _classifier

    seed = registry.current()
    running = ExpressionClassifier(default_model())
    watcher = ModelWatcher(running.model_path, interval_s=0.0, current_id=running.model_id,
                           locate=lambda: resolve_model("shipped-int8"))
    assert running.model_path == seed.model_file
    assert watcher.poll() is None  # nothing changed

    promoted = registry.promote(registry.add(_model_folder(tmp_path, "previous", PREVIOUS)),
                                reason="test")
    new_id = promoted.card.fingerprint
    assert new_id != seed.card.fingerprint
    assert default_model() == promoted.model_file                      # the runner's default
    assert FaceSentiment().model_path == promoted.model_file           # predict, the API
    assert _classifier("shipped-int8").model_path == promoted.model_file   # monitor reference
    assert load_predictor("shipped-int8").path == promoted.model_file  # ab-test, evaluate

    # A running runner swaps the new model in between frames, without a restart.
    deadline = time.monotonic() + 60
    swapped = None
    while swapped is None and time.monotonic() < deadline:
        swapped = watcher.poll()
        time.sleep(0.05)
    watcher.close()
    assert swapped is not None and swapped.model_path == promoted.model_file
    assert swapped.model_id == new_id


def test_shipping_to_models_moves_a_seeded_record(tmp_path, registry, project_root):
    """`face-sentiment ship` into models/ makes the new model current in a seeded registry."""
    from face_sentiment.cli.ship import record_shipped

    seed = registry.current()
    shipped = _model_folder(project_root, "models", PREVIOUS)
    record_shipped(shipped)
    assert registry.current() != seed
    assert resolve_model("shipped-int8").read_bytes() == (shipped / SHIPPED_MODEL).read_bytes()
    assert registry.events()[-1]["event"] == "promote"
