"""Run profiles: `profiles/<name>.yaml` holds the settings of a whole `make reports` run.

`full` reproduces the shipped results; `ci` is small enough for the test suite; `ferplus`
trains the FER+ variant. Each profile has a `training` section, one section of papermill
parameters per notebook and, optionally, `ship_to`: the folder `make ship` writes the model to
(default `models/`).

A profile may start with `base: <name>`: it then states only what differs from that profile;
`base: [a, b]` takes a, then b over it (e.g. a recipe and an architecture part from
profiles/parts/, which no run uses on its own). `load_profile` resolves every base (a base may
have bases of its own) by a deep merge: mappings
merge key by key (so `notebooks:` merges per notebook, and per parameter within one), the
child's value wins everywhere else (a list replaces the base's list whole), and an explicit
null (`key:` with no value) replaces the base's value with None: the way to switch a setting
off or to drop a section, such as `ferplus`'s `notebooks: null`. An empty mapping (`{}`)
inherits everything. The resolved profile has no `base` key.

Overrides (`--set KEY=VALUE` on the CLI's profile commands) apply after the bases are resolved:
a dotted key (`training.epochs`, `training.preprocessing.method`) and a value read as YAML
(`3`, `0.5`, `1e-3`, `true`, `null`, `clahe`, `'007'`, or a flow list `[24, 48]`). A key must
name a setting the resolved profile holds, or one the caller declares for its section (the CLI
declares TrainingConfig's fields, which a profile may leave to their defaults); any other key
is an error naming it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

import yaml

from face_sentiment.paths import models_dir, project_root

# The top-level entries a profile may hold (module docstring): --set may add any of them.
MAPPINGS = ("training", "notebooks", "retrain")
SECTIONS = (*MAPPINGS, "ship_to")
_EXPONENT_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)[eE][-+]?[0-9]+")


def profile_path(name: str) -> Path:
    return project_root() / "profiles" / f"{name}.yaml"


def _available(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml"))


def _read_profile(path: Path) -> dict:
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"profile {path} is not a mapping of settings")
    return values


def merge_profiles(base: dict, child: dict) -> dict:
    """`child` over `base`: mappings merge recursively, any other value of the child (a list,
    a scalar, None) replaces the base's. Neither argument is modified."""
    merged = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_profiles(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_profile(name: str, overrides: Iterable[str] = (),
                 known: Mapping[str, Collection[str]] | None = None) -> dict:
    """A profile's settings with its bases resolved, then `overrides` (`KEY=VALUE` strings)
    applied in order (see the module docstring and `apply_overrides`)."""
    path = profile_path(name)
    if not path.exists():
        raise FileNotFoundError(f"no profile {path}; available: {_available(path.parent)}")
    return apply_overrides(_resolve(path, []), overrides, known, source=str(path))


def parse_override(text: str) -> tuple[str, object]:
    """`training.epochs=3` -> ("training.epochs", 3): a dotted key and its value read as YAML
    (a scalar or a flow list; a mapping is refused: set its keys one by one)."""
    key, equals, value = text.partition("=")
    key = key.strip()
    if not equals or not key or not all(part.strip() for part in key.split(".")):
        raise ValueError(f"--set takes KEY=VALUE with a dotted key, e.g. training.epochs=3; "
                         f"got {text!r}")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as error:
        raise ValueError(f"--set {key}: {value!r} is not a YAML value "
                         f"({getattr(error, 'problem', error)})") from None
    if isinstance(parsed, dict):
        raise ValueError(f"--set {key}: give one setting at a time ({key}.NAME=VALUE), "
                         "not a mapping")
    if isinstance(parsed, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        parsed = float(parsed)  # PyYAML (YAML 1.1) reads 1e-3 as text; YAML 1.2 as a number
    return key, parsed


def apply_overrides(profile: dict, overrides: Iterable[str],
                    known: Mapping[str, Collection[str]] | None = None,
                    source: str = "the profile") -> dict:
    """`profile` with each `KEY=VALUE` override set, in order (a later one wins); `profile`
    itself is not modified. A key must name a setting `profile` holds, a top-level SECTION, or
    a name `known` lists for its section ({"training": (...), "training.preprocessing": (...)}:
    settings a profile may leave to their defaults); anything else is a ValueError naming the
    key, so a typo fails before a run starts instead of being ignored."""
    known = {"": SECTIONS, **{name: () for name in MAPPINGS}, **(known or {})}
    result = copy.deepcopy(profile)
    for text in overrides:
        key, value = parse_override(text)
        parts = key.split(".")
        target = result
        for depth, part in enumerate(parts):
            section, path = ".".join(parts[:depth]), ".".join(parts[:depth + 1])
            if part not in target and part not in known.get(section, ()):
                names = sorted({*map(str, target), *known.get(section, ())})
                raise ValueError(f"--set {key}: {source} has no setting {path!r} ("
                                 + (f"{section} holds" if section else "its sections are")
                                 + f": {', '.join(names) or 'nothing'})")
            last = depth == len(parts) - 1
            if last and (path in known or isinstance(target.get(part), dict)):
                raise ValueError(f"--set {key}: {path} is a section: set its settings one by "
                                 f"one ({path}.NAME=VALUE)")
            if last:
                target[part] = value
            elif isinstance(target.get(part), dict):
                target = target[part]
            elif target.get(part) is None and path in known:  # left out, or switched off
                target[part] = {}
                target = target[part]
            else:
                raise ValueError(f"--set {key}: {path} is a setting, not a section")
    return result


def profile_files(name: str) -> list[Path]:
    """The files a profile is read from: its own and every base's (for make's dependencies)."""
    files, pending = [], [profile_path(name)]
    while pending:
        path = pending.pop(0)
        if path in files or not path.exists():
            continue
        files.append(path)
        bases = _read_profile(path).get("base", [])
        pending += [profile_path(b) for b in ([bases] if isinstance(bases, str) else bases)
                    if isinstance(b, str)]
    return files


def _resolve(path: Path, chain: list[Path]) -> dict:
    """`path`'s settings over its bases' (each resolved the same way, in the order listed)."""
    values = _read_profile(path)
    bases = values.get("base", [])
    bases = [bases] if isinstance(bases, str) else bases
    if not isinstance(bases, list) or not all(isinstance(b, str) and b for b in bases):
        raise ValueError(f"{path}: `base:` must name a profile or list profiles, "
                         f"got {values['base']!r}")
    resolved: dict = {}
    for base in bases:
        base_path = profile_path(base)
        if base_path in chain or base_path == path:
            loop = [*chain[chain.index(base_path):], path, base_path] if base_path in chain \
                else [path, base_path]
            raise ValueError(f"{path}: profile inheritance cycle: "
                             + " -> ".join(str(p) for p in loop))
        if not base_path.exists():
            raise FileNotFoundError(f"{path} has `base: {base}`, but there is no "
                                    f"{base_path}; available: {_available(path.parent)}")
        resolved = merge_profiles(resolved, _resolve(base_path, [*chain, path]))
    resolved = merge_profiles(resolved, values)
    resolved.pop("base", None)
    return resolved


def run_folder(name: str, overrides: Iterable[str] = (),
               known: Mapping[str, Collection[str]] | None = None) -> str:
    """`runs/<run_name>` of a profile (resolved, overrides applied), relative to the project
    root: what the Makefile's rules are named after (`face-sentiment run-dir`)."""
    run_name = (load_profile(name, overrides, known).get("training") or {}).get("run_name")
    if not run_name:
        raise ValueError(f"profile {profile_path(name)} has no training.run_name")
    return f"runs/{run_name}"


def ship_folder(profile: dict) -> Path:
    """Where `make ship` puts a profile's model: its `ship_to` (relative to the project), else
    models/."""
    folder = profile.get("ship_to")
    return project_root() / folder if folder else models_dir()


# `python -m face_sentiment.profiles NAME` prints run_folder(NAME): the Makefile's fallback
# before .venv exists (this module needs only pyyaml).
if __name__ == "__main__":
    import sys

    print(run_folder(sys.argv[1]))
