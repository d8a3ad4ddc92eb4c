"""The make DAG of this checkout, read with dry runs (`make -n`): nothing is executed."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="GNU make not installed")


def dry_run(*targets: str) -> str:
    """Commands make would run with every target treated as out of date (-B)."""
    return subprocess.run(["make", "-n", "-B", *targets], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout


def test_reports_never_train_export_or_ship_a_model():
    """`make reports` reads the shipped models; replacing one is `make ship`'s job alone.
    (Once the card was a make target, and a newer evaluated run got shipped by `make reports`.)
    """
    commands = dry_run("reports", "PROFILE=full")
    assert "face_sentiment report notebooks/05-evaluation.ipynb --profile full" in commands
    for step in ("train", "export", "evaluate", "ship"):
        assert f"face_sentiment {step} " not in commands, step


@pytest.mark.parametrize("profile", ["full", "ferplus"])
def test_ship_runs_the_profiles_chain(profile):
    run = yaml.safe_load((ROOT / "profiles" / f"{profile}.yaml").read_text())["training"][
        "run_name"]
    commands = dry_run("ship", f"PROFILE={profile}")
    chain = [f"face_sentiment {step} --profile {profile}"
             for step in ("train", "export", "evaluate", "ship")]
    positions = [commands.find(step) for step in chain]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), commands
    assert f"runs/{run}" in dry_run("-p", "help", f"PROFILE={profile}")
