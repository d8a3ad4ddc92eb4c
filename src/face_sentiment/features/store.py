"""Open the project's Feast repository (features/), apply it, find its views and tables.

The repository is `features/` at the project root, or `$FACE_SENTIMENT_FEATURE_REPO`, or the
folder given (tests apply a copy in a temporary tree). Its feature_store.yaml puts the
registry, the SQLite online store and the offline parquet tables under data/feature_store/,
relative to the repository folder. Feast's usage telemetry is switched off before Feast is
imported. A store whose registry does not exist yet, or lacks a view, is a `StoreError` that
names the repository and says to run `face-sentiment features apply`.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

from face_sentiment.paths import project_root

REPO_ENV = "FACE_SENTIMENT_FEATURE_REPO"
CONFIG_FILE = "feature_store.yaml"
APPLY_HINT = "run `face-sentiment features apply`"


class StoreError(ValueError):
    """The feature store is missing, not applied, or lacks a feature view (names which)."""


def repo_dir(repo: str | os.PathLike | None = None) -> Path:
    """The Feast repository folder: `repo`, else $FACE_SENTIMENT_FEATURE_REPO, else features/."""
    chosen = repo or os.environ.get(REPO_ENV)
    return Path(chosen).expanduser().resolve() if chosen else project_root() / "features"


def _feast():
    """Import Feast quietly: no usage telemetry, no warnings about its dask and pydantic."""
    import warnings
    os.environ.setdefault("FEAST_USAGE", "False")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import dask
        dask.config.set({"dataframe.query-planning-warning": False})
        import feast
        import feast.infra.offline_stores.dask  # noqa: F401 - imports dask.dataframe
        import feast.infra.online_stores.sqlite  # noqa: F401 - pydantic's shadowing warnings
    return feast


def _check_repo(folder: Path) -> None:
    if not (folder / CONFIG_FILE).is_file():
        raise StoreError(f"no feature store at {folder}: {CONFIG_FILE} is missing (the "
                         f"repository is features/ in the project, or ${REPO_ENV})")


def _resolve(folder: Path, path: str) -> Path:
    return Path(os.path.normpath(Path(path) if Path(path).is_absolute() else folder / path))


def registry_path(store) -> Path:
    """The registry file of an opened store (resolved against its repository folder)."""
    return _resolve(Path(store.repo_path), store.config.registry.path)


def open_store(repo: str | os.PathLike | None = None, applied: bool = True):
    """The FeatureStore of the repository; with `applied`, its registry must exist (Feast
    would otherwise create an empty one)."""
    feast = _feast()
    from feast.repo_config import load_repo_config
    folder = repo_dir(repo)
    _check_repo(folder)
    config = load_repo_config(folder, folder / CONFIG_FILE)
    registry = _resolve(folder, config.registry.path)
    if applied and not registry.is_file():
        raise StoreError(f"feature store not applied: {APPLY_HINT} (repository {folder}; "
                         f"registry {registry} does not exist)")
    registry.parent.mkdir(parents=True, exist_ok=True)
    return feast.FeatureStore(repo_path=str(folder), config=config)


def feature_view(store, name: str):
    """The registered feature view `name`, or a StoreError naming it and the repository."""
    from feast.errors import FeatureViewNotFoundException
    try:
        return store.get_feature_view(name)
    except FeatureViewNotFoundException:
        raise StoreError(f"feature view {name!r} is not in the registry of {store.repo_path}: "
                         f"{APPLY_HINT}") from None


def table_path(store, name: str) -> Path:
    """The offline parquet file of feature view `name` (its FileSource, resolved)."""
    source = feature_view(store, name).batch_source
    return _resolve(Path(store.repo_path), source.path)


def data_folder(store) -> Path:
    """data/feature_store/: the registry's folder."""
    return registry_path(store).parent


def _parse(folder: Path):
    """Feast's parse_repo, which imports each .py by its path relative to the working folder:
    run there, without bytecode files, and forget the modules after (a second repository in
    the same process must not get the first one's)."""
    from feast.repo_operations import parse_repo
    names = [".".join(p.relative_to(folder).with_suffix("").parts)
             for p in folder.rglob("*.py")]
    before = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    sys.path.insert(0, str(folder))
    try:
        with contextlib.chdir(folder):
            for name in names:
                sys.modules.pop(name, None)
            return parse_repo(folder)
    finally:
        for name in names:
            sys.modules.pop(name, None)
        sys.path.remove(str(folder))
        sys.dont_write_bytecode = before


def apply(repo: str | os.PathLike | None = None) -> tuple[object, list[str]]:
    """Register the repository's definitions (what `feast apply` does, without its chdir and
    exit): returns the store and the names of the feature views now registered."""
    from feast.project import Project
    from feast.repo_operations import apply_total_with_repo_instance
    folder = repo_dir(repo)
    _check_repo(folder)
    store = open_store(folder, applied=False)
    contents = _parse(folder)
    if not contents.projects:
        contents.projects.append(Project(name=store.project))
    if not contents.feature_views:
        raise StoreError(f"{folder}: no feature view defined in its .py files")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # Feast's colourised diff: summarised below
        apply_total_with_repo_instance(store, store.project, store.registry, contents,
                                       skip_source_validation=False)
    return store, sorted(view.name for view in contents.feature_views)
