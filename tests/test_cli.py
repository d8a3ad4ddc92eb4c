"""The command line: `data` (missing, fresh, up to date, corrupted) and `validate` exit codes.

`validate` is checked with `run_validation` replaced by a stub: the real Beam gate is covered in
test_validation.py, and here only the command's reporting and exit status matter.
"""

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2

from face_sentiment.cli import _join_option_values, build_parser, main
from face_sentiment.data import validation
from face_sentiment.data.cache import cache_dir
from face_sentiment.data.validation import ValidationResult

# The validate command imports TFDV (and with it TensorFlow).
pytestmark = pytest.mark.tensorflow


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
    monkeypatch.setenv("FER2013_PATH", str(fer2013_csv))
    calls = []

    def install(anomalies):
        def run_validation(dataset, beam_args=None, update_schema=False):
            calls.append((len(dataset.labels), beam_args, update_schema))
            return ValidationResult({}, anomalies)
        monkeypatch.setattr(validation, "run_validation", run_validation)
        return calls
    return install


def test_validate_exits_0_when_the_contract_holds(capsys, stub_validation):
    calls = stub_validation({"Training": anomalies_pb2.Anomalies()})
    flags = "--runner=DirectRunner --direct_num_workers=1"  # the README's form: several flags
    assert main(["validate", "--beam-args", flags, "--update-schema"]) == 0
    assert calls == [(9, flags, True)]
    assert "validation passed" in capsys.readouterr().out


def test_validate_exits_1_and_prints_the_anomalies(capsys, stub_validation):
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
