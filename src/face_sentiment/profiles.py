"""Run profiles: `profiles/<name>.yaml` holds the settings of a whole `make reports` run.

`full` reproduces the shipped results; `ci` is small enough for the test suite; `ferplus`
trains the FER+ variant. Each profile has a `training` section, one section of papermill
parameters per notebook and, optionally, `ship_to`: the folder `make ship` writes the model to
(default `models/`).

A profile may start with `base: <name>`: it then states only what differs from that profile.
`load_profile` resolves the chain (a base may have a base of its own) by a deep merge: mappings
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
    """A profile's settings with its `base:` chain resolved (see the module docstring)."""
    path = profile_path(name)
    if not path.exists():
        raise FileNotFoundError(f"no profile {path}; available: {_available(path.parent)}")
    chain = [path]
    values = _read_profile(path)
    layers = [values]
    while "base" in values:
        base = values["base"]
        if not isinstance(base, str) or not base:
            raise ValueError(f"{chain[-1]}: `base:` must name a profile, got {base!r}")
        base_path = profile_path(base)
        if base_path in chain:
            cycle = " -> ".join(str(p) for p in [*chain[chain.index(base_path):], base_path])
            raise ValueError(f"{chain[-1]}: profile inheritance cycle: {cycle}")
        if not base_path.exists():
            raise FileNotFoundError(f"{chain[-1]} has `base: {base}`, but there is no "
                                    f"{base_path}; available: {_available(path.parent)}")
        chain.append(base_path)
        values = _read_profile(base_path)
        layers.append(values)
    resolved: dict = {}
    for layer in reversed(layers):  # the root base first, the named profile last
        resolved = merge_profiles(resolved, layer)
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
