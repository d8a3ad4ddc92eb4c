"""The make DAG of this checkout, read with dry runs (`make -n`): nothing is executed."""

import re
import shutil
import subprocess
import sys

import pytest
from helpers import ROOT, subprocess_env

from face_sentiment.profiles import load_profile

REAL_PROFILES = ("full", "ci", "ferplus")

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
def test_ship_runs_the_profiles_chain(profile, real_root):
    run = load_profile(profile)["training"]["run_name"]
    commands = dry_run("ship", f"PROFILE={profile}")
    chain = [f"face_sentiment {step} --profile {profile}"
             for step in ("train", "export", "evaluate", "ship")]
    positions = [commands.find(step) for step in chain]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), commands
    assert f"runs/{run}" in dry_run("-p", "help", f"PROFILE={profile}")


def make_variable(name: str, *arguments: str) -> str:
    """A variable's value as make computed it on reading the Makefile (`make -p`)."""
    database = dry_run("-p", "help", *arguments)
    return re.search(rf"^{name} :?= ?(.*)$", database, re.MULTILINE).group(1).strip()


@pytest.mark.parametrize("profile", REAL_PROFILES)
def test_run_dir_is_the_resolved_profiles_run_folder_with_or_without_the_venv(profile,
                                                                              real_root):
    """RUN_DIR comes from `face-sentiment run-dir`; before `make setup` has made .venv, from
    the system Python reading src/, else from awk: each gives the same folder."""
    expected = f"runs/{load_profile(profile)['training']['run_name']}"
    assert make_variable("RUN_DIR", f"PROFILE={profile}") == expected
    assert make_variable("RUN_DIR", f"PROFILE={profile}", "VENV=/nonexistent") == expected
    assert make_variable("RUN_DIR", f"PROFILE={profile}", "VENV=/nonexistent",
                         "SYSTEM_PYTHON=false") == expected


@pytest.mark.slow
def test_a_profile_depends_on_its_base():
    assert make_variable("PROFILE_FILES", "PROFILE=full").split() == ["profiles/full.yaml"]
    for child in ("ci", "ferplus"):
        assert make_variable("PROFILE_FILES", f"PROFILE={child}").split() == [
            f"profiles/{child}.yaml", "profiles/full.yaml"]
    assert make_variable("PROFILE_FILES", "PROFILE=ferplus-resnet").split() == [
        "profiles/ferplus-resnet.yaml", "profiles/ferplus.yaml", "profiles/parts/resnet-shape.yaml",
        "profiles/full.yaml"]
    database = dry_run("-p", "help", "PROFILE=ci")
    assert re.search(r"^runs/ci/best\.keras: profiles/ci\.yaml profiles/full\.yaml ",
                     database, re.MULTILINE)


@pytest.mark.slow
def test_run_dir_command_prints_the_folder_without_tensorflow(real_root):
    check = ("import sys; from face_sentiment.cli import main; rc = main(sys.argv[1:]); "
             "assert not {'tensorflow', 'keras'} & set(sys.modules), 'TensorFlow imported'; "
             "sys.exit(rc)")
    for profile in REAL_PROFILES:
        done = subprocess.run([sys.executable, "-c", check, "run-dir", "--profile", profile],
                              env=subprocess_env(), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"runs/{load_profile(profile)['training']['run_name']}\n"
    missing = subprocess.run([sys.executable, "-m", "face_sentiment", "run-dir", "--profile",
                              "nope"], env=subprocess_env(), capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode == 2 and "no profile" in missing.stderr and not missing.stdout


def test_test_fast_deselects_slow_real_data_and_tensorflow_tests():
    commands = dry_run("test-fast")
    assert '-m pytest -q -m "not slow and not real_data and not tensorflow" tests' in commands
    assert "nbval" not in commands and "ruff" not in commands
    listed = subprocess.run(["make", "help"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    assert re.search(r"^  test-fast +pytest without", listed, re.MULTILINE), listed


def test_pi_bench_writes_the_log_that_monitor_reads():
    bench, monitor = dry_run("pi-bench"), dry_run("monitor")
    assert "--log reports/pi-bench/results.jsonl" in bench
    # the room's own reference by default (FER2013 is the monitor's labelled fallback)
    assert "face_sentiment monitor reports/pi-bench/results.jsonl --window 50frames" in monitor
    assert "--reference" not in monitor
