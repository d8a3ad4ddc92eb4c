"""The command line: `data` (missing, fresh, up to date, corrupted) and `validate` exit codes,
the command table, parsing without TensorFlow and profile overrides (`--set`).

`validate` is checked with `run_validation` replaced by a stub: the real Beam gate is covered in
test_validation.py, and here only the command's reporting and exit status matter. Those tests
import TFDV (and with it TensorFlow) and are marked so; the rest of the module is TensorFlow-free.
"""

import argparse
import importlib
import subprocess
import sys

import pytest
from helpers import ROOT, subprocess_env

from face_sentiment.cli import COMMANDS, _join_option_values, build_parser, main
from face_sentiment.data.cache import cache_dir


def test_data_without_any_source_prints_the_download_help(capsys, project_root):
    assert main(["data"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: FER2013 was not found")
    assert "data/raw/fer2013.csv" in err
    assert "FER2013_PATH" in err
    assert not cache_dir().exists()


def test_data_with_a_missing_source_path_names_it(capsys, tmp_path):
    missing = tmp_path / "nope.csv"
    assert main(["data", "--source", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "does not exist" in err and "FER2013_PATH" in err


def test_data_builds_the_cache_then_reports_it_up_to_date(capsys, fer2013_csv):
    assert main(["data", "--source", str(fer2013_csv)]) == 0
    out = capsys.readouterr().out
    assert "cache built" in out and "9 images" in out
    assert (cache_dir() / "manifest.json").exists()
    built = (cache_dir() / "arrays.npz").stat().st_mtime_ns

    assert main(["data", "--source", str(fer2013_csv)]) == 0
    out = capsys.readouterr().out
    assert "up to date" in out and "cache built" not in out
    assert (cache_dir() / "arrays.npz").stat().st_mtime_ns == built

    assert main(["data", "--source", str(fer2013_csv), "--force"]) == 0
    assert "cache built" in capsys.readouterr().out


def test_data_finds_the_source_through_the_environment(capsys, fer2013_csv, monkeypatch):
    monkeypatch.setenv("FER2013_PATH", str(fer2013_csv))
    assert main(["data"]) == 0
    assert "cache built" in capsys.readouterr().out


def test_corrupted_csv_names_the_file_and_line(capsys, write_csv, csv_rows):
    tokens = csv_rows[4][1].split()
    tokens[10] = "x7"
    csv_rows[4][1] = " ".join(tokens)
    path = write_csv(csv_rows)
    assert main(["data", "--source", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert f"{path} line 6 (data row 4)" in err  # the header is line 1
    assert "'x7'" in err
    assert not cache_dir().exists()


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as error:
        main(["frobnicate"])
    assert error.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_parser_defaults():
    parser = build_parser()
    assert parser.parse_args(["validate"]).beam_args == ""
    assert parser.parse_args(["validate"]).update_schema is False
    assert parser.parse_args(["train"]).profile == "full"
    assert parser.parse_args(["prepare-notebooks"]).profile == "ci"
    assert parser.parse_args(["report", "x.ipynb"]).no_pdf is False
    readme = "--runner=FlinkRunner --flink_master=host:8081 --environment_type=LOOPBACK"
    assert parser.parse_args(["validate", "--beam-args", readme]).beam_args == readme
    assert parser.parse_args(["validate", "--beam-args=--runner=X"]).beam_args == "--runner=X"


def test_beam_args_accepts_a_single_flag():
    argv = _join_option_values(["validate", "--beam-args", "--runner=DirectRunner"])
    args = build_parser().parse_args(argv)
    assert args.beam_args == "--runner=DirectRunner"


# --- validate --------------------------------------------------------------------------------

@pytest.fixture
def stub_validation(monkeypatch, fer2013_csv):
    """Replace the Beam gate by a stub returning the given anomalies; record its arguments."""
    from face_sentiment.data import validation

    monkeypatch.setenv("FER2013_PATH", str(fer2013_csv))
    calls = []

    def install(anomalies):
        def run_validation(dataset, beam_args=None, update_schema=False):
            calls.append((len(dataset.labels), beam_args, update_schema))
            return validation.ValidationResult({}, anomalies)
        monkeypatch.setattr(validation, "run_validation", run_validation)
        return calls
    return install


@pytest.mark.tensorflow
def test_validate_exits_0_when_the_contract_holds(capsys, stub_validation):
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    calls = stub_validation({"Training": anomalies_pb2.Anomalies()})
    flags = "--runner=DirectRunner --direct_num_workers=1"  # the README's form: several flags
    assert main(["validate", "--beam-args", flags, "--update-schema"]) == 0
    assert calls == [(9, flags, True)]
    assert "validation passed" in capsys.readouterr().out


@pytest.mark.tensorflow
def test_validate_exits_1_and_prints_the_anomalies(capsys, stub_validation):
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    drift = anomalies_pb2.Anomalies()
    info = drift.anomaly_info["brightness"]
    info.short_description = "High approximate Jensen-Shannon divergence"
    info.description = "divergence 0.4 above the threshold 0.1"
    calls = stub_validation({"Training": anomalies_pb2.Anomalies(), "drift:PrivateTest": drift})
    assert main(["validate"]) == 1
    assert calls == [(9, "", False)]
    out = capsys.readouterr().out
    assert "validation FAILED" in out
    assert "drift:PrivateTest" in out and "brightness" in out
    assert "divergence 0.4 above the threshold 0.1" in out


@pytest.mark.tensorflow  # the command imports TFDV before it looks for the data
def test_validate_without_data_exits_2(capsys):
    assert main(["validate"]) == 2
    assert "FER2013 was not found" in capsys.readouterr().err


class _Constant:
    """A predictor that always answers one class."""

    def __init__(self, name, classes, answer):
        self.name, self.classes, self.answer = name, classes, answer

    def predict(self, faces):
        import numpy as np

        return np.eye(len(self.classes))[np.full(len(faces), self.answer)]


@pytest.mark.parametrize("label_set", ["fer2013", "ferplus"])
def test_ab_test_scores_two_models_on_their_own_label_set(capsys, monkeypatch, fer2013_csv,
                                                          ferplus_csv, label_set):
    from face_sentiment.data import cache
    from face_sentiment.evaluation import predictors
    from face_sentiment.labels import LABEL_SETS

    dataset = cache.load_dataset(fer2013_csv, ferplus_csv)
    monkeypatch.setattr(cache, "load_dataset", lambda: dataset)
    _, labels = dataset.select("PublicTest", label_set)
    classes = LABEL_SETS[label_set]
    models = {"a": _Constant("a", classes, int(labels[0])),
              "b": _Constant("b", classes, (int(labels[0]) + 1) % len(classes))}
    monkeypatch.setattr(predictors, "load_predictor", lambda name: models[name])
    assert main(["ab-test", "a", "b"]) == 0
    out = capsys.readouterr().out
    assert f"PublicTest, {label_set} labels, {len(labels)} faces" in out
    expected = (labels == labels[0]).mean()
    assert f"accuracy_a: {expected}" in out


# --- the command table -----------------------------------------------------------------------

def test_every_command_is_a_module_with_add_arguments_and_run():
    names = [command.name for command in COMMANDS]
    assert len(names) == len(set(names)) >= 24
    for command in COMMANDS:
        module = importlib.import_module(command.module, "face_sentiment.cli")
        assert callable(module.add_arguments) and callable(module.run), command.name
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)  # builds on a bare parser, as the table does
    subparsers, = (action for action in build_parser()._actions
                   if isinstance(action, argparse._SubParsersAction))
    assert list(subparsers.choices) == names  # `--help` lists them in the table's order
    assert subparsers.choices["ab-test"].get_default("handler").__module__ == (
        "face_sentiment.cli.ab_test")


def test_parsing_and_every_help_import_neither_tensorflow_nor_pandas():
    code = ("import contextlib, io, sys\n"
            "from face_sentiment.cli import COMMANDS, build_parser\n"
            "parser = build_parser()\n"
            "for command in COMMANDS:\n"
            "    with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "        try:\n"
            "            parser.parse_args([command.name, '--help'])\n"
            "        except SystemExit as done:\n"
            "            assert done.code == 0, command.name\n"
            "    assert out.getvalue().startswith('usage: face-sentiment ' + command.name)\n"
            "parser.parse_args(['train', '--set', 'training.epochs=3'])\n"
            "bad = sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', "
            "'pandas', 'feast', 'apache_beam'})\n"
            "assert not bad, bad\n")
    done = subprocess.run([sys.executable, "-c", code], env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


# --- profile overrides (--set) ---------------------------------------------------------------

def test_train_settings_are_the_profile_then_set_then_the_flags(real_root):
    from face_sentiment.cli.train import training_config
    from face_sentiment.model.config import TrainingConfig
    from face_sentiment.preprocessing import PreprocessingSpec
    from face_sentiment.profiles import load_profile

    args = build_parser().parse_args([
        "train", "--profile", "ci", "--set", "training.epochs=3",
        "--set", "training.preprocessing.method=clahe", "--set", "training.epochs=4",
        "--set", "training.camera_augmentation=0.25", "--set", "training.ema_momentum=null"])
    config = training_config(args)
    ci = TrainingConfig.from_dict(load_profile("ci")["training"])
    assert config.epochs == 4  # the last --set of a key wins
    assert config.preprocessing == PreprocessingSpec(method="clahe")  # size kept: 48
    assert config.camera_augmentation == 0.25  # a default the profile leaves out
    assert config.ema_momentum is None and config.run_name == "ci"
    assert config.batch_size == ci.batch_size and config.max_train_images == 512
    # config.json records the settings a run trains with (training.train writes to_dict()).
    recorded = config.to_dict()
    assert (recorded["epochs"], recorded["preprocessing"]["method"]) == (4, "clahe")
    # The command's own flags come last: --run-name over a --set run_name.
    args = build_parser().parse_args(["train", "--profile", "ci", "--set",
                                      "training.run_name=probe", "--run-name", "flag"])
    assert training_config(args).run_name == "flag"
    args = build_parser().parse_args(["distill", "--profile", "ci", "--set",
                                      "training.distill_alpha=0.25"])
    assert training_config(args).distill_alpha == 0.25


def test_an_unknown_set_key_is_an_error_naming_it(real_root, capsys):
    from face_sentiment.cli.train import training_config

    args = build_parser().parse_args(["train", "--profile", "ci", "--set", "training.epoch=3"])
    with pytest.raises(ValueError, match="'training.epoch'"):
        training_config(args)
    assert main(["run-dir", "--profile", "ci", "--set", "trainin.run_name=x"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: --set trainin.run_name: ")
    assert "'trainin'" in err and "ci.yaml" in err


def test_set_needs_key_equals_value(capsys):
    with pytest.raises(SystemExit) as error:
        main(["train", "--set", "epochs"])
    assert error.value.code == 2
    assert "argument --set: takes KEY=VALUE" in capsys.readouterr().err


def test_run_dir_and_the_release_commands_read_the_overridden_profile(real_root, capsys):
    from face_sentiment.cli.common import profile_of, run_of

    assert main(["run-dir", "--profile", "ci", "--set", "training.run_name=probe"]) == 0
    assert capsys.readouterr().out == "runs/probe\n"
    args = build_parser().parse_args(["ship", "--profile", "ci", "--set", "ship_to=models/x",
                                      "--set", "training.run_name=probe"])
    assert run_of(args) == "probe" and profile_of(args)["ship_to"] == "models/x"
    args = build_parser().parse_args(["export", "--profile", "ci", "--run", "other"])
    assert run_of(args) == "other"


def test_main_imports_only_the_module_of_the_command_it_runs():
    code = ("import sys\nfrom face_sentiment.cli import main\n"
            "assert main(['run-dir', '--profile', 'ci']) == 0\n"
            "loaded = {m for m in sys.modules if m.startswith('face_sentiment.')}\n"
            "assert 'face_sentiment.cli.run_dir' in loaded, loaded\n"
            "others = {m for m in loaded if m.startswith('face_sentiment.cli.')} - {\n"
            "    'face_sentiment.cli.run_dir', 'face_sentiment.cli.common'}\n"
            "assert not others and 'face_sentiment.live.predict' not in loaded, loaded\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**subprocess_env(), "FACE_SENTIMENT_ROOT": str(ROOT)},
                          timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == "runs/ci\n"
