"""Energy metering (face_sentiment.energy) and the runner's per-face monitoring fields.

The Pi 5 PMIC and RAPL are faked (a reader function, a powercap folder); codecarbon is started
for real in one slow test only, since it needs seconds to inspect the machine.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
import time

import numpy as np
import pytest

from face_sentiment import energy
from face_sentiment.energy import EnergyMeter, combine, parse_pmic, per_unit, pmic_power
from face_sentiment.live.faces import Face
from face_sentiment.live.observations import (
    FACE_FIELDS,
    entropy_bits,
    eye_angle,
    face_observations,
)
from face_sentiment.quality import quality_arrays

# Both formats vcgencmd has printed (newer firmware: `NAME_A current(N)=...A`).
PMIC_OUTPUT = """\
   3V7_WL_SW_A current(0)=0.10000000A
   VDD_CORE_A current(7)=2.00000000A
   3V7_WL_SW_V volt(8)=3.70000000V
   VDD_CORE_V volt(15)=0.80000000V
   EXT5V_V volt(24)=5.15000000V
DDR_VDD2_A=0.50000000A
DDR_VDD2_V=1.10000000V
"""


class FakeClock:
    def __init__(self, step: float = 1.0) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_parse_pmic_both_formats_and_sum_power():
    rails = parse_pmic(PMIC_OUTPUT)
    assert rails["VDD_CORE"] == {"A": 2.0, "V": 0.8} and rails["EXT5V"] == {"V": 5.15}
    assert pmic_power(rails) == pytest.approx(0.37 + 1.6 + 0.55)  # EXT5V has no current


def test_pmic_energy_is_integrated_over_time():
    clock = FakeClock()
    watts = iter([2.0, 2.0, 4.0, 4.0, 4.0])

    def reader():
        return {"VDD_CORE": {"V": 1.0, "A": next(watts)}}

    meter = EnergyMeter("bench", method="pi5-pmic", interval_s=3600, clock=clock,
                        pmic_reader=reader)
    meter.start()
    clock.advance(10)
    meter._sample_pmic()  # what the sampling thread does every interval_s
    clock.advance(10)
    result = meter.stop()
    # trapezoids: 10 s at 2 W, then 10 s from 2 W to 4 W -> 20 + 30 J
    assert result["method"] == "pi5-pmic" and result["kind"] == "measured"
    assert result["joules"] == pytest.approx(50.0) and result["kwh"] == pytest.approx(50 / 3.6e6)
    assert result["mean_power_w"] == pytest.approx(2.5) and result["samples"] == 3
    assert "lower bound" in result["scope"]


def make_rapl(root, package_uj, dram_uj=None, limit=1_000_000):
    for name, value, folder in (("package-0", package_uj, "intel-rapl:0"),
                                ("core", 5, "intel-rapl:0:0"),
                                ("dram", dram_uj, "intel-rapl:0:1")):
        if value is None:
            continue
        path = root / folder
        path.mkdir(parents=True, exist_ok=True)
        (path / "name").write_text(name)
        (path / "energy_uj").write_text(str(value))
        (path / "max_energy_range_uj").write_text(str(limit))


def test_rapl_counts_package_and_dram_and_survives_a_wrap(tmp_path):
    make_rapl(tmp_path, 900_000, 100)
    meter = EnergyMeter("train", method="rapl", rapl_root=tmp_path, interval_s=3600).start()
    make_rapl(tmp_path, 200_000, 2_100)  # the package counter wrapped at 1 J
    result = meter.stop()
    assert result["kind"] == "measured"
    assert result["joules"] == pytest.approx((100_000 + 200_000 + 2_000) / 1e6)
    assert "package-0" in result["scope"] and "dram" in result["scope"]
    assert "core" not in result["scope"]  # inside the package figure already


def test_auto_falls_back_to_the_cpu_time_estimate_and_says_why(monkeypatch, tmp_path):
    monkeypatch.setattr(energy, "board_model", lambda: "")
    result = EnergyMeter("x", method="auto", rapl_root=tmp_path / "none").start().stop()
    assert result["method"] == "cpu-time" and result["kind"] == "estimate"
    assert result["label"] == "estimate from CPU time" and result["joules"] is not None
    assert "rapl: no RAPL domains" in result["methods_not_available"][0]
    assert "estimate from CPU time (cpu-time)" in energy.describe(result)
    off = EnergyMeter("x", method="off").start().stop()
    assert off["kind"] == "unavailable" and "FACE_SENTIMENT_ENERGY=off" in off["reason"]
    with pytest.raises(ValueError, match="energy method 'watts'"):
        EnergyMeter("x", method="watts")  # from code: a bug, not a setting


def test_an_unknown_method_in_the_environment_falls_back_with_one_warning(monkeypatch,
                                                                           caplog):
    monkeypatch.setenv("FACE_SENTIMENT_ENERGY", "bogus")
    monkeypatch.setattr(energy, "_warned", set())
    with caplog.at_level("WARNING", logger="face_sentiment.energy"):
        first = EnergyMeter("bench").start().stop()
        second = EnergyMeter("fer bench").start().stop()
    assert first["method"] == second["method"] == "cpu-time"
    assert first["label"] == "estimate from CPU time" and first["joules"] is not None
    (warning,) = caplog.records  # one warning, not one per meter
    message = warning.getMessage()
    assert "$FACE_SENTIMENT_ENERGY='bogus'" in message
    for name in ("auto", "off", "pi5-pmic", "rapl", "codecarbon", "pi4-estimate", "cpu-time"):
        assert name in message
    assert "'bogus' is not an energy method" in first["methods_not_available"][0]


def _busy(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_the_cpu_time_estimate_follows_the_work_not_the_wall_time(monkeypatch):
    """A CPU-bound block and a sleeping one of about the same wall time: the estimate is CPU
    seconds x the power per core, so the busy one costs far more and the sleeping one next to
    nothing (the wall-time figure would charge both alike)."""
    monkeypatch.delenv("FACE_SENTIMENT_CORE_W", raising=False)
    with EnergyMeter("busy", method="cpu-time") as busy:
        _busy(0.3)
    with EnergyMeter("sleep", method="cpu-time") as sleeping:
        time.sleep(0.3)
    busy, sleeping = busy.result, sleeping.result
    assert busy["kind"] == sleeping["kind"] == "estimate"
    assert busy["joules"] == pytest.approx(busy["process_cpu_s"] * energy.DEFAULT_CORE_W,
                                           abs=0.01)
    assert busy["joules"] >= 0.25 * energy.DEFAULT_CORE_W
    assert sleeping["joules"] < busy["joules"] / 10
    assert f"{energy.DEFAULT_CORE_W:g} W per busy core" in busy["assumptions"][0]
    monkeypatch.setenv("FACE_SENTIMENT_CORE_W", "1.5")
    cpu = itertools.count(0.0, 2.0)  # 2 CPU seconds per reading
    with EnergyMeter("arm", method="cpu-time", cpu_seconds=lambda: next(cpu)) as arm:
        pass
    assert arm.result["joules"] == pytest.approx(3.0) and arm.result["core_w"] == 1.5


def test_per_unit_of_a_cpu_time_estimate_uses_the_timed_cpu_seconds():
    run = {"task": "pi", "method": "cpu-time", "kind": "estimate",
           "label": "estimate from CPU time", "joules": 8.0, "kwh": 8 / 3.6e6, "core_w": 4.0,
           "duration_s": 10.0, "mean_power_w": 0.8, "assumptions": []}
    # a busy machine stretches the wall time; the CPU seconds of the timed frames do not change
    for wall in (2.0, 20.0):
        frame = per_unit(run, 100, "frame", seconds=wall, cpu_seconds=1.5)
        assert frame["joules_per_frame"] == pytest.approx(1.5 * 4.0 / 100)
        assert "1.500 CPU s x 4 W per core" in frame["per_unit_method"]["frame"]
    assert per_unit(run, 100, "frame")["joules_per_frame"] == pytest.approx(0.08)
    both = combine([run, run], "training")
    assert both["label"] == "estimate from CPU time" and both["kind"] == "estimate"


def test_pi4_estimate_from_cpu_time(monkeypatch):
    monkeypatch.setattr(energy, "board_model", lambda: "Raspberry Pi 4 Model B Rev 1.5")
    clock, cpu = FakeClock(), itertools.count(0.0, 5.0)  # 5 CPU seconds per call
    meter = EnergyMeter("bench", method="pi4-estimate", clock=clock,
                        cpu_seconds=lambda: next(cpu))
    meter.start()
    clock.advance(10)
    result = meter.stop()  # 5 CPU s in 10 s: half a core busy
    assert result["kind"] == "estimate"
    assert result["joules"] == pytest.approx(10 * (2.7 + 0.925 * 0.5))
    assert "RasPi.TV" in result["assumptions"][0]


def test_per_unit_and_combine():
    run = {"task": "t", "method": "rapl", "kind": "measured", "joules": 10.0, "kwh": 10 / 3.6e6,
           "duration_s": 5.0, "mean_power_w": 2.0, "assumptions": []}
    assert per_unit(run, 100, "face")["joules_per_face"] == pytest.approx(0.1)
    timed = per_unit(run, 100, "frame", seconds=4.0)
    assert timed["joules_per_frame"] == pytest.approx(0.08) and "4.000 s" in \
        timed["per_unit_method"]["frame"]
    assert per_unit(None, 1, "face") is None
    estimate = {**run, "method": "codecarbon", "kind": "estimate", "assumptions": ["TDP"]}
    both = combine([run, estimate, {"kind": "unavailable", "joules": None}], "training")
    assert both["joules"] == 20.0 and both["kind"] == "estimate" and both["sessions"] == 3
    assert both["sessions_without_energy"] == 1 and both["method"] == "codecarbon+rapl"
    assert "mJ per face" in energy.describe(per_unit(run, 100, "face"))


def test_energy_imports_only_the_standard_library():
    code = ("import sys; import face_sentiment.energy, face_sentiment.live.observations\n"
            "bad = {'codecarbon', 'pandas', 'tensorflow'} & {m.split('.')[0] for m in "
            "sys.modules}\nassert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.slow
def test_codecarbon_estimate_is_labelled(monkeypatch):
    pytest.importorskip("codecarbon")
    monkeypatch.setattr(energy, "board_model", lambda: "")
    with EnergyMeter("train", method="codecarbon", codecarbon_interval_s=1) as meter:
        sum(i * i for i in range(2_000_000))
    result = meter.result
    assert result["method"] == "codecarbon" and result["joules"] > 0
    if not any(p.name.startswith("intel-rapl") for p in energy.POWERCAP.glob("*")):
        assert result["kind"] == "estimate"
        assert any("TDP" in a for a in result["assumptions"])
    assert any("RAM power" in a for a in result["assumptions"])
    assert result["components_j"]["cpu"] + result["components_j"]["ram"] == pytest.approx(
        result["joules"], rel=1e-3)


# --- the runner's per-face monitoring fields ------------------------------------------------


def test_face_observations_use_the_fer2013_quality_definition():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (2, 48, 48), dtype=np.uint8)
    faces = [Face((10, 10, 74, 74), 0.9, ((20, 30), (40, 40), (30, 50), (30, 60))),
             Face((0, 0, 30, 50), 0.8)]
    probabilities = np.array([[0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]])
    records = face_observations(crops, faces, probabilities, ("a", "b", "c", "d"))
    assert [set(r) for r in records] == [set(FACE_FIELDS)] * 2
    quality = quality_arrays(crops)
    assert records[0]["brightness"] == pytest.approx(quality["brightness"][0], abs=0.005)
    assert records[1]["sharpness"] == pytest.approx(quality["sharpness"][1], abs=0.05)
    assert records[0]["face_px"] == 64.0 and records[1]["face_px"] == pytest.approx(38.7)
    assert records[0]["eye_angle"] == pytest.approx(math.degrees(math.atan2(10, 20)), abs=0.01)
    assert records[1]["eye_angle"] is None  # no keypoints
    assert records[0]["top"] == "a" and records[0]["top_confidence"] == 0.7
    assert records[1]["entropy"] == pytest.approx(2.0)
    assert face_observations(np.zeros((0, 48, 48), np.uint8), [], np.zeros((0, 4)), ()) == []


def test_entropy_and_eye_angle_edge_cases():
    assert entropy_bits(np.array([[1.0, 0.0, 0.0]]))[0] == 0.0
    assert eye_angle(Face((0, 0, 1, 1), 1.0, ((5, 5), (0, 0)))) == pytest.approx(45.0)


def test_the_data_layer_and_the_runner_share_one_quality_definition():
    from face_sentiment.data import quality as data_quality
    from face_sentiment.live import observations
    assert data_quality.quality_arrays is observations.quality_arrays
    image = np.arange(48 * 48, dtype=np.uint8).reshape(1, 48, 48)
    assert data_quality.quality_features(image).iloc[0].brightness == pytest.approx(
        quality_arrays(image)["brightness"][0])


# --- where the figures go: run folders, the model card -------------------------------------


def test_record_session_adds_up_a_resumed_runs_sessions(tmp_path):
    session = {"task": "training t", "method": "codecarbon", "kind": "estimate",
               "joules": 30.0, "kwh": 30 / 3.6e6, "duration_s": 3.0, "mean_power_w": 10.0,
               "assumptions": ["RAM power 10.0 W"]}
    energy.record_session(tmp_path / "energy.json", session, epochs=2)
    content = energy.record_session(tmp_path / "energy.json", {**session, "joules": 12.0},
                                    epochs=1)
    assert [s["epochs"] for s in content["sessions"]] == [2, 1]
    assert content["total"]["joules"] == 42.0 and content["total"]["kind"] == "estimate"
    assert content["total"]["assumptions"] == ["RAM power 10.0 W"]


@pytest.mark.real_data
def test_the_card_renders_each_energy_figure_with_its_method():
    from helpers import REAL_MODELS

    from face_sentiment.model_card import ModelCard, render_markdown
    card = ModelCard.load(REAL_MODELS).to_dict()
    estimate = {"joules": 119.0, "kwh": 119 / 3.6e6, "method": "codecarbon", "kind": "estimate"}
    card["energy"] = {"training": estimate, "export": None,
                      "inference_int8": {**estimate, "joules": 7.9, "joules_per_face": 0.0022}}
    markdown = render_markdown(card)
    assert "| training | 119 | 3.31e-05 |  | codecarbon | estimate |" in markdown
    assert "| export | not recorded |" in markdown and "| 2.2 mJ | codecarbon |" in markdown


@pytest.mark.tensorflow
@pytest.mark.slow
def test_ship_puts_the_runs_energy_in_the_card(tmp_path):
    from face_sentiment.evaluation.release import energy_summary
    run = {"task": "training toy", "method": "rapl", "kind": "measured", "joules": 5.0,
           "kwh": 5 / 3.6e6, "duration_s": 1.0, "mean_power_w": 5.0, "assumptions": []}
    energy.record_session(tmp_path / "energy.json", run)
    inference = {**run, "joules_per_face": 0.001}
    summary = energy_summary(tmp_path, {"energy": run, "inference_energy": inference}, {})
    assert summary["training"]["joules"] == 5.0 and summary["training"]["kind"] == "measured"
    assert summary["inference_int8"]["joules_per_face"] == 0.001
    assert summary["evaluation"] is None  # an evaluation recorded before energy was
