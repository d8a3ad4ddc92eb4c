"""Deploy a registry version to where the runner reads its model: a directory, or a Pi.

Targets come from a YAML file (default `deploy/targets.yaml`, git-ignored; see
`deploy/targets.example.yaml`)::

    targets:
      demo: {directory: deploy/pi}              # a folder (relative to the project)
      pi:   {host: pi@raspberrypi.local, path: /home/pi/face_sentiment/models,
             method: rsync, ssh_options: [-i, ~/.ssh/pi]}   # method: rsync (default) or scp

The model file goes first and the card last, each replaced atomically (a directory: a
temporary file and a rename; rsync: its own temporary file and rename; scp: a temporary name
and `ssh mv`), because the runner watches the card: when the card changes, the model it
describes is already in place. A `deployed.json` beside them names the version.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from face_sentiment.model_card import CARD_FILE, SHIPPED_MODEL
from face_sentiment.paths import copy_atomic, project_root, write_atomic
from face_sentiment.pipeline.registry import Version

DEFAULT_CONFIG = Path("deploy") / "targets.yaml"
DEFAULT_DIRECTORY = Path("deploy") / "pi"
# In deployment order: the model before the card that announces it.
DEPLOYED_FILES = (SHIPPED_MODEL, "model_card.md", CARD_FILE)
METHODS = ("rsync", "scp")


class DeployError(RuntimeError):
    """A deploy target is misconfigured or a copy to it failed (message says which)."""


@dataclass(frozen=True)
class Target:
    """A deploy target: a local directory, or `path` on `host` over rsync or scp."""

    name: str
    directory: Path | None = None
    host: str | None = None
    path: str | None = None
    method: str = "rsync"
    ssh_options: tuple[str, ...] = field(default=())

    @classmethod
    def from_dict(cls, name: str, values: dict, source: str) -> Target:
        if not isinstance(values, dict):
            raise DeployError(f"{source}: target {name!r} must be a mapping")
        unknown = set(values) - {"directory", "host", "path", "method", "ssh_options"}
        if unknown:
            raise DeployError(f"{source}: target {name!r} has unknown key(s) "
                              f"{', '.join(sorted(unknown))}")
        if ("directory" in values) == ("host" in values):
            raise DeployError(f"{source}: target {name!r} needs either `directory:` or "
                              "`host:` with `path:`")
        if "directory" in values:
            folder = Path(str(values["directory"])).expanduser()
            return cls(name, directory=folder if folder.is_absolute()
                       else project_root() / folder)
        method = values.get("method", "rsync")
        if method not in METHODS or not values.get("path"):
            raise DeployError(f"{source}: target {name!r} needs `path:` and a method of "
                              f"{', '.join(METHODS)} (got {method!r})")
        return cls(name, host=str(values["host"]), path=str(values["path"]), method=method,
                   ssh_options=tuple(str(o) for o in values.get("ssh_options", ())))

    def describe(self) -> str:
        return str(self.directory) if self.directory else f"{self.host}:{self.path} ({self.method})"


def load_targets(config: str | Path | None = None) -> dict[str, Target]:
    """The targets of a config file; without one (and no deploy/targets.yaml), one target
    `local`: the directory deploy/pi."""
    path = Path(config) if config else project_root() / DEFAULT_CONFIG
    if not path.exists():
        if config:
            raise FileNotFoundError(f"deploy config {path} does not exist")
        return {"local": Target("local", directory=project_root() / DEFAULT_DIRECTORY)}
    values = yaml.safe_load(path.read_text()) or {}
    targets = values.get("targets") if isinstance(values, dict) else None
    if not isinstance(targets, dict) or not targets:
        raise DeployError(f"{path}: expected `targets:` mapping names to targets")
    return {name: Target.from_dict(name, spec, str(path)) for name, spec in targets.items()}


def remote_commands(target: Target, files: list[Path]) -> list[list[str]]:
    """The commands that copy `files`, in order, to a remote target, each file atomically."""
    ssh = ["ssh", *target.ssh_options]
    commands = [[*ssh, target.host, "mkdir", "-p", target.path]]
    for file in files:
        remote = f"{target.path.rstrip('/')}/{file.name}"
        if target.method == "rsync":
            commands.append(["rsync", "--checksum", "--times", "-e", shlex.join(ssh), str(file),
                             f"{target.host}:{remote}"])
        else:
            staging = f"{target.path.rstrip('/')}/.{file.name}.tmp"
            commands.append(["scp", "-q", *target.ssh_options, str(file),
                             f"{target.host}:{staging}"])
            commands.append([*ssh, target.host, "mv", "-f", staging, remote])
    return commands


def deploy(version: Version, target: Target, timeout_s: float = 300.0) -> dict:
    """Copy `version`'s model and card to `target` (model first, card last); returns what was
    deployed where (also written as deployed.json beside the files)."""
    files = [version.folder / name for name in DEPLOYED_FILES
             if (version.folder / name).is_file()]
    record = {"version": version.name, "fingerprint": version.fingerprint,
              "target": target.name, "where": target.describe(),
              "deployed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if target.directory is not None:
        for file in files:
            copy_atomic(file, target.directory / file.name)
        write_atomic(target.directory / "deployed.json", json.dumps(record, indent=2) + "\n")
        return record
    with tempfile.TemporaryDirectory() as folder:
        manifest = write_atomic(Path(folder) / "deployed.json", json.dumps(record, indent=2) + "\n")
        for command in remote_commands(target, [*files, manifest]):
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
            except (OSError, subprocess.TimeoutExpired) as error:
                raise DeployError(f"deploy to {target.describe()}: {shlex.join(command)}: "
                                  f"{error}") from error
            if done.returncode != 0:
                raise DeployError(f"deploy to {target.describe()} failed: {shlex.join(command)} "
                                  f"exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return record
