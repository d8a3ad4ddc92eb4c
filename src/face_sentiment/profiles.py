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
"""

from __future__ import annotations

from pathlib import Path

import yaml

from face_sentiment.paths import models_dir, project_root


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


def load_profile(name: str) -> dict:
    """A profile's settings with its bases resolved (see the module docstring)."""
    path = profile_path(name)
    if not path.exists():
        raise FileNotFoundError(f"no profile {path}; available: {_available(path.parent)}")
    return _resolve(path, [])


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


def run_folder(name: str) -> str:
    """`runs/<run_name>` of a profile (resolved), relative to the project root: what the
    Makefile's rules are named after (`face-sentiment run-dir`)."""
    run_name = (load_profile(name).get("training") or {}).get("run_name")
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
