"""Energy of a run (training, evaluation, export, a Pi benchmark), with how it was obtained.

`EnergyMeter(task)` is a context manager; its `result` says how many joules (and kWh) the
block took and, beside the number, the method, whether it was measured or estimated, what it
covers and what was assumed. Methods, in the order `auto` tries them:

- `pi5-pmic` (measured): a Raspberry Pi 5's PMIC reports the voltage and current of each of
  its rails (`vcgencmd pmic_read_adc`); their V x I summed is the board's power. It is sampled
  every `interval_s` in a background thread and integrated over time (trapezoids). Covers
  the rails the PMIC feeds (SoC cores, DRAM, I/O, 3.3 V/1.8 V...), not the PMIC's own
  conversion losses nor USB devices on the 5 V input: a lower bound of the power at the plug.
- `rapl` (measured): Intel/AMD RAPL energy counters (/sys/class/powercap/intel-rapl:*),
  read at the start and end (and sampled, for counter wrap-around). Covers the CPU packages
  (and DRAM when the platform exposes that domain), for every process on the machine.
- `pi4-estimate` (estimate): a Raspberry Pi 4 has no power telemetry. The board's power is
  taken as 2.7 W idle plus (6.4 - 2.7) / 4 W per busy core, the busy cores being this
  process's CPU seconds per second (RasPi.TV's measurements of a Pi 4 B at 5 V: 540 mA idle,
  1280 mA under `stress --cpu 4`, no peripherals).
- `cpu-time` (estimate, labelled "estimate from CPU time"): where there is no power meter,
  this process's CPU time over the metered block (`time.process_time`, every thread) times a
  stated power per busy core (`DEFAULT_CORE_W`, or $FACE_SENTIMENT_CORE_W). It follows the
  work done, not the wall time: a loop that waits for a busy machine costs no more, one that
  sleeps costs nothing. It leaves out idle power, RAM and the rest of the machine.
- `codecarbon` (estimate without RAPL), only when asked for by name: its
  `OfflineEmissionsTracker` (never the online one: it calls geolocation services and silently
  falls back to Canada). Without RAPL it charges the CPU's TDP times this process's CPU load
  plus a constant RAM power for the whole wall time, so per inference it is mean power / FPS:
  it tracks how long a shared machine took, not the model. Its CO2 figure is what it adds.
  Imported lazily: the Pi does not have it.

$FACE_SENTIMENT_ENERGY picks a method (`off` disables metering; default `auto`; a name it does
not know falls back to `cpu-time` with one warning); the carbon intensity of codecarbon's CO2
figure uses $FACE_SENTIMENT_COUNTRY (ISO 3166 alpha-3, default USA), which changes the
emissions, never the joules. Standard library only, so the Pi runner imports it.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("face_sentiment.energy")

ENV = "FACE_SENTIMENT_ENERGY"
COUNTRY_ENV = "FACE_SENTIMENT_COUNTRY"
CORE_W_ENV = "FACE_SENTIMENT_CORE_W"
DEFAULT_COUNTRY = "USA"
JOULES_PER_KWH = 3.6e6
METHODS = ("pi5-pmic", "rapl", "codecarbon", "pi4-estimate", "cpu-time")
CPU_TIME_LABEL = "estimate from CPU time"
# Watts per busy core (logical CPU) for `cpu-time`: a server CPU's TDP per core, e.g. AMD EPYC
# 9654 360 W / 96 cores = 3.75 W, Intel Xeon Platinum 8480+ 350 W / 56 = 6.25 W; codecarbon
# charges 4 W per thread for a CPU model it does not know. 4 W, overridable (an ARM board's
# core draws nearer 1 W: the Pi 4's is 0.93 W below).
DEFAULT_CORE_W = 4.0
POWERCAP = Path("/sys/class/powercap")
BOARD_MODEL = Path("/proc/device-tree/model")
# Raspberry Pi 4 B at 5 V (RasPi.TV, 2019): idle 540 mA, `stress --cpu 4` 1280 mA.
PI4_IDLE_W = 2.7
PI4_FULL_LOAD_W = 6.4
PI4_CORES = 4


def board_model() -> str:
    try:
        return BOARD_MODEL.read_text().strip("\x00\n ")
    except OSError:
        return ""


# ------------------------------------------------------------------------------------------
# Readers


_PMIC_LINE = re.compile(r"^\s*(?P<rail>[A-Za-z0-9_]+?)_(?P<kind>[AV])\b[^=]*=\s*"
                        r"(?P<value>[-+0-9.eE]+)\s*(?P<unit>[AV])?\s*$")


def parse_pmic(output: str) -> dict[str, dict[str, float]]:
    """`vcgencmd pmic_read_adc` output -> {rail: {"V": volts, "A": amps}} (both formats:
    `VDD_CORE_A current(7)=0.76A` and `VDD_CORE_A=0.76A`)."""
    rails: dict[str, dict[str, float]] = {}
    for line in output.splitlines():
        match = _PMIC_LINE.match(line)
        if match:
            rails.setdefault(match["rail"], {})[match["kind"]] = float(match["value"])
    return rails


def pmic_power(rails: dict[str, dict[str, float]]) -> float:
    """Watts: V x I summed over the rails that report both (EXT5V, BATT report only V)."""
    return sum(values["V"] * values["A"] for values in rails.values()
               if "V" in values and "A" in values)


def read_pmic(run: Callable[[list[str]], str] | None = None) -> dict[str, dict[str, float]]:
    """The Pi 5's rails now (raises OSError when there is no PMIC to read)."""
    if run is None:
        if shutil.which("vcgencmd") is None:
            raise OSError("vcgencmd not found")

        def run(command: list[str]) -> str:
            return subprocess.run(command, capture_output=True, text=True, timeout=2,
                                  check=True).stdout
    try:
        rails = parse_pmic(run(["vcgencmd", "pmic_read_adc"]))
    except (subprocess.SubprocessError, ValueError) as error:
        raise OSError(f"vcgencmd pmic_read_adc failed: {error}") from error
    if not any("V" in v and "A" in v for v in rails.values()):
        raise OSError("vcgencmd pmic_read_adc reported no rail with both voltage and current")
    return rails


class RaplCounters:
    """RAPL energy counters: the top-level package domains, plus their DRAM subdomains (the
    core/uncore subdomains are inside the package figure already)."""

    def __init__(self, root: Path = POWERCAP) -> None:
        self.domains: list[tuple[str, Path, float]] = []
        for folder in sorted(root.glob("intel-rapl:*")):
            parts = folder.name.split(":")
            name = _read(folder / "name") or folder.name
            if len(parts) == 2 or (len(parts) == 3 and name == "dram"):
                energy = folder / "energy_uj"
                limit = float(_read(folder / "max_energy_range_uj") or 2**32)
                if energy.exists():
                    self.domains.append((f"{folder.name} ({name})", energy, limit))
        if not self.domains:
            raise OSError(f"no RAPL domains under {root}")
        self._last = self.read_raw()  # raises PermissionError when not readable
        self.total_uj = 0.0

    def read_raw(self) -> list[float]:
        return [float(path.read_text()) for _, path, _ in self.domains]

    def sample(self) -> float:
        """Microjoules since the previous sample, counting one wrap-around per domain."""
        now = self.read_raw()
        delta = 0.0
        for (_, _, limit), before, after in zip(self.domains, self._last, now, strict=True):
            delta += after - before if after >= before else after + limit - before
        self._last = now
        self.total_uj += delta
        return delta


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _codecarbon_available() -> bool:
    import importlib.util
    return importlib.util.find_spec("codecarbon") is not None


# ------------------------------------------------------------------------------------------
# The meter


_warned: set[str] = set()  # environment values already warned about (once per process)


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message)


def core_watts(value: float | None = None) -> float:
    """The power per busy core of `cpu-time`: `value`, else $FACE_SENTIMENT_CORE_W, else
    DEFAULT_CORE_W (a value that is not a positive number: the default, with a warning)."""
    if value is not None:
        return float(value)
    text = os.environ.get(CORE_W_ENV, "").strip()
    if not text:
        return DEFAULT_CORE_W
    try:
        watts = float(text)
    except ValueError:
        watts = -1.0
    if not 0 < watts < 1000:
        _warn_once(f"{CORE_W_ENV}={text}", f"${CORE_W_ENV}={text!r} is not a power in watts per "
                   f"core: using {DEFAULT_CORE_W:g} W")
        return DEFAULT_CORE_W
    return watts


class EnergyMeter:
    """`with EnergyMeter("training") as meter: ...` then `meter.result` (a dict).

    `method`: one of METHODS, `auto` (the first that works here) or `off`; default
    $FACE_SENTIMENT_ENERGY or `auto`. A method that fails to start gives a result with
    `kind: unavailable` and the reason: metering never stops the work it measures. So does
    a name $FACE_SENTIMENT_ENERGY gives that is not a method: `cpu-time`, with one warning
    (a `method` argument that is not one is a bug: ValueError).
    """

    def __init__(self, task: str, method: str | None = None, interval_s: float = 0.5,
                 country_iso_code: str | None = None, codecarbon_interval_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic,
                 pmic_reader: Callable[[], dict] | None = None,
                 rapl_root: Path | None = None,
                 cpu_seconds: Callable[[], float] = time.process_time,
                 core_w: float | None = None) -> None:
        self.task = task
        self._notes: list[str] = []  # why methods were not used, for the result
        valid = ("auto", "off", *METHODS)
        if method is not None:
            self.requested = method.strip().lower()
            if self.requested not in valid:
                raise ValueError(f"energy method {self.requested!r}: use auto, off or one of "
                                 f"{', '.join(METHODS)} (${ENV})")
        else:
            text = os.environ.get(ENV) or "auto"
            self.requested = text.strip().lower()
            if self.requested not in valid:
                # a typo in the environment must not abort a training run or a benchmark
                _warn_once(f"{ENV}={text}", f"${ENV}={text!r} is not an energy method (valid: "
                           f"{', '.join(valid)}): using cpu-time, the {CPU_TIME_LABEL}")
                self.requested = "cpu-time"
                self._notes.append(f"${ENV}={text!r} is not an energy method")
        self.core_w = core_watts(core_w)
        self.interval_s, self.codecarbon_interval_s = interval_s, codecarbon_interval_s
        self.country = (country_iso_code or os.environ.get(COUNTRY_ENV)
                        or DEFAULT_COUNTRY).upper()
        self.clock, self.cpu_seconds = clock, cpu_seconds
        self.pmic_reader = pmic_reader or read_pmic
        self.rapl_root = rapl_root or POWERCAP
        self.method: str | None = None
        self.result: dict | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._samples: list[tuple[float, float]] = []
        self._rails: dict | None = None
        self._rapl: RaplCounters | None = None
        self._tracker = None

    # --- starting ---------------------------------------------------------------------------

    def _candidates(self) -> tuple[str, ...]:
        if self.requested != "auto":
            return (self.requested,)
        board = board_model()
        candidates = ["pi5-pmic"] if "Raspberry Pi 5" in board else []
        candidates.append("rapl")
        if "Raspberry Pi 4" in board:
            candidates.append("pi4-estimate")
        # Not codecarbon: without RAPL its estimate is wall time x a constant power.
        candidates.append("cpu-time")
        return tuple(candidates)

    def start(self) -> EnergyMeter:
        self.result = None
        if self.requested == "off":
            self._notes.append(f"disabled (${ENV}=off)")
            return self
        for method in self._candidates():
            try:
                getattr(self, f"_start_{method.replace('-', '_')}")()
            except (OSError, ImportError, RuntimeError, ValueError) as error:
                self._notes.append(f"{method}: {error}")
                continue
            self.method = method
            break
        self._t0 = self.clock()
        self._cpu0 = self.cpu_seconds()
        return self

    def _start_pi5_pmic(self) -> None:
        self._rails = self.pmic_reader()
        self._samples = [(self.clock(), pmic_power(self._rails))]
        self._start_sampler(self._sample_pmic)

    def _sample_pmic(self) -> None:
        try:
            rails = self.pmic_reader()
        except OSError:
            return
        self._rails = rails
        self._samples.append((self.clock(), pmic_power(rails)))

    def _start_rapl(self) -> None:
        self._rapl = RaplCounters(self.rapl_root)
        self._start_sampler(self._rapl.sample)

    def _start_codecarbon(self) -> None:
        if not _codecarbon_available():
            raise ImportError("codecarbon is not installed")
        from codecarbon import OfflineEmissionsTracker
        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        self._tracker = OfflineEmissionsTracker(
            country_iso_code=self.country, project_name=f"face_sentiment {self.task}",
            measure_power_secs=self.codecarbon_interval_s, tracking_mode="process",
            save_to_file=False, log_level="error", allow_multiple_runs=True)
        self._tracker.start()

    def _start_pi4_estimate(self) -> None:
        if "Raspberry Pi 4" not in board_model() and self.requested != "pi4-estimate":
            raise RuntimeError("not a Raspberry Pi 4")

    def _start_cpu_time(self) -> None:
        pass  # nothing to start: the CPU clock is read at start and stop

    def _start_sampler(self, sample: Callable[[], object]) -> None:
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.interval_s):
                sample()

        self._thread = threading.Thread(target=loop, name=f"energy-{self.task}", daemon=True)
        self._thread.start()

    # --- stopping -------------------------------------------------------------------------

    def stop(self) -> dict:
        if self.result is not None:
            return self.result
        duration = max(self.clock() - getattr(self, "_t0", self.clock()), 0.0)
        cpu = max(self.cpu_seconds() - getattr(self, "_cpu0", self.cpu_seconds()), 0.0)
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        base = {"task": self.task, "method": self.method, "duration_s": round(duration, 3),
                "process_cpu_s": round(cpu, 3)}
        try:
            if self.method is None:
                result = {**base, "kind": "unavailable", "joules": None, "kwh": None,
                          "reason": "; ".join(self._notes) or "no energy method available"}
            else:
                result = {**base, **getattr(self, f"_stop_{self.method.replace('-', '_')}")(
                    duration, cpu)}
        except Exception as error:  # noqa: BLE001 - metering never fails the measured work
            result = {**base, "kind": "unavailable", "joules": None, "kwh": None,
                      "reason": f"{self.method} failed at the end: {error}"}
        if result.get("joules") is not None:
            joules = float(result["joules"])
            result["joules"] = round(joules, 3)
            result["kwh"] = joules / JOULES_PER_KWH
            result["mean_power_w"] = round(joules / duration, 3) if duration > 0 else None
        if self._notes and self.method is not None:
            result["methods_not_available"] = list(self._notes)
        self.result = result
        return result

    def _stop_pi5_pmic(self, duration: float, cpu: float) -> dict:
        self._sample_pmic()
        samples = self._samples
        joules = sum((t1 - t0) * (p0 + p1) / 2
                     for (t0, p0), (t1, p1) in zip(samples, samples[1:], strict=False))
        powers = [p for _, p in samples]
        return {"kind": "measured", "joules": joules, "samples": len(samples),
                "sample_interval_s": self.interval_s,
                "power_w": {"min": round(min(powers), 3), "max": round(max(powers), 3)},
                "scope": "Raspberry Pi 5 PMIC rails (vcgencmd pmic_read_adc): sum of V x I "
                         "over the rails reporting both; excludes PMIC conversion losses and "
                         "USB devices on the 5 V input (a lower bound of the power at the plug)",
                "assumptions": [f"power between samples (every {self.interval_s:g} s) varies "
                                "linearly (trapezoid integration)"],
                "rails": sorted(self._rails or {})}

    def _stop_rapl(self, duration: float, cpu: float) -> dict:
        self._rapl.sample()
        return {"kind": "measured", "joules": self._rapl.total_uj / 1e6,
                "scope": "RAPL energy counters of " + ", ".join(n for n, _, _ in
                                                                self._rapl.domains)
                         + ": every process on the machine, not this one alone",
                "assumptions": []}

    def _stop_codecarbon(self, duration: float, cpu: float) -> dict:
        self._tracker.stop()
        data = self._tracker.final_emissions_data
        cpu_hw = next((h for h in getattr(self._tracker, "_hardware", [])
                       if type(h).__name__ == "CPU"), None)
        mode = getattr(cpu_hw, "_mode", None)
        tdp = getattr(cpu_hw, "_tdp", None)
        measured = mode in ("intel_rapl", "intel_power_gadget", "apple_powermetrics")
        assumptions = []
        if not measured:
            assumptions.append(
                f"CPU power = TDP {tdp} W (codecarbon's figure for {data.cpu_model!r}; "
                "4 W per thread when the model is not in its table) x this process's CPU load "
                f"(mode {mode}, tracking {data.tracking_mode}); no RAPL counters here")
        assumptions.append(f"RAM power {data.ram_power:.1f} W (codecarbon's per-DIMM model: "
                           "5 W per x86 DIMM, at least 2), charged for the whole duration")
        assumptions.append(f"emissions use {data.country_name}'s grid carbon intensity "
                           f"({data.country_iso_code}, ${COUNTRY_ENV}); joules do not")
        return {"kind": "measured" if measured else "estimate",
                "joules": data.energy_consumed * JOULES_PER_KWH,
                "components_j": {"cpu": round(data.cpu_energy * JOULES_PER_KWH, 3),
                                 "ram": round(data.ram_energy * JOULES_PER_KWH, 3),
                                 "gpu": round(data.gpu_energy * JOULES_PER_KWH, 3)},
                "mean_power_components_w": {"cpu": round(data.cpu_power, 3),
                                            "ram": round(data.ram_power, 3)},
                "emissions_kg_co2eq": data.emissions, "country_iso_code": data.country_iso_code,
                "scope": f"codecarbon {data.codecarbon_version} OfflineEmissionsTracker, "
                         f"tracking mode {data.tracking_mode}: this process's CPU share plus "
                         "the RAM estimate",
                "cpu_model": data.cpu_model, "cpu_mode": mode, "assumptions": assumptions}

    def _stop_pi4_estimate(self, duration: float, cpu: float) -> dict:
        busy = cpu / duration if duration > 0 else 0.0
        per_core = (PI4_FULL_LOAD_W - PI4_IDLE_W) / PI4_CORES
        watts = PI4_IDLE_W + per_core * min(busy, PI4_CORES)
        return {"kind": "estimate", "joules": watts * duration,
                "scope": "whole Raspberry Pi 4 B board at its 5 V input, no peripherals",
                "assumptions": [f"board power = {PI4_IDLE_W} W idle + {per_core:.3f} W per "
                                f"busy core; busy cores = this process's CPU seconds per "
                                f"second ({busy:.2f}); figures: RasPi.TV's Pi 4 B "
                                "measurements (540 mA idle, 1280 mA with stress --cpu 4, 5 V)"]}

    def _stop_cpu_time(self, duration: float, cpu: float) -> dict:
        return {"kind": "estimate", "label": CPU_TIME_LABEL, "joules": cpu * self.core_w,
                "core_w": self.core_w,
                "scope": "this process's CPU time (every thread) x a fixed power per busy "
                         "core: the cores' work only, without idle power, RAM or the rest of "
                         "the machine",
                "assumptions": [f"{self.core_w:g} W per busy core (${CORE_W_ENV}; default "
                                f"{DEFAULT_CORE_W:g} W, a server CPU's TDP per core) x "
                                f"{cpu:.3f} CPU s of this process; no power meter (RAPL, "
                                "PMIC) here"]}

    # --- context manager ----------------------------------------------------------------------

    def __enter__(self) -> EnergyMeter:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def per_unit(energy: dict | None, count: int | float, unit: str,
             seconds: float | None = None, cpu_seconds: float | None = None) -> dict | None:
    """`energy` plus `joules_per_<unit>`: the run's joules / `count`, or, for the timed part
    of a longer metered run (e.g. a benchmark without its warm-up): with a CPU-time estimate
    and that part's `cpu_seconds`, those CPU seconds x the power per core / `count`;
    otherwise mean power x its wall `seconds` / `count`."""
    if energy is None:
        return None
    out = dict(energy)
    joules, power = energy.get("joules"), energy.get("mean_power_w")
    cpu_estimate = energy.get("method") == "cpu-time" and energy.get("core_w") is not None
    value, how = None, None
    if count and joules is not None:
        if cpu_estimate and cpu_seconds is not None:
            value = energy["core_w"] * cpu_seconds / count
            how = (f"the timed part's {cpu_seconds:.3f} CPU s x {energy['core_w']:g} W per "
                   f"core / {count} {unit}s")
        elif seconds is not None and power is not None:
            value = power * seconds / count
            how = f"mean power over the metered run x the {seconds:.3f} s timed / {count} {unit}s"
        else:
            value = joules / count
    out[f"joules_per_{unit}"] = None if value is None else float(f"{value:.6g}")
    if how is not None:
        out.setdefault("per_unit_method", {})[unit] = how
    return out


def label(energy: dict) -> str:
    """How a figure was obtained, for a reader: 'measured', 'estimate', 'estimate from CPU
    time'."""
    return str(energy.get("label") or energy.get("kind"))


def describe(energy: dict | None) -> str:
    """One line: '12.3 J (3.4e-06 kWh), estimate from CPU time (cpu-time), 0.52 mJ per
    face'."""
    if not energy:
        return "energy: not recorded"
    if energy.get("joules") is None:
        return f"energy: unavailable ({energy.get('reason')})"
    per = [f"{1000 * v:.3g} mJ per {k.removeprefix('joules_per_')}"
           for k, v in energy.items() if k.startswith("joules_per_") and v is not None]
    return (f"energy: {energy['joules']:.4g} J ({energy['kwh']:.3g} kWh), {label(energy)} "
            f"({energy['method']})" + (f", {', '.join(per)}" if per else ""))


def combine(results: list[dict], task: str) -> dict:
    """Several metered sessions of one task (a resumed training run) as one figure."""
    usable = [r for r in results if r.get("joules") is not None]
    if not usable:
        return {"task": task, "kind": "unavailable", "joules": None, "kwh": None,
                "sessions": len(results)}
    joules = sum(r["joules"] for r in usable)
    duration = sum(r.get("duration_s") or 0.0 for r in usable)
    kinds = {r["kind"] for r in usable}
    methods = sorted({r["method"] for r in usable})
    labels = {label(r) for r in usable}
    return {"task": task, "method": "+".join(methods),
            "kind": "measured" if kinds == {"measured"} else "estimate",
            **({"label": CPU_TIME_LABEL} if labels == {CPU_TIME_LABEL} else {}),
            "joules": round(joules, 3), "kwh": joules / JOULES_PER_KWH,
            "duration_s": round(duration, 3),
            "mean_power_w": round(joules / duration, 3) if duration > 0 else None,
            "sessions": len(results), "sessions_without_energy": len(results) - len(usable),
            "assumptions": sorted({a for r in usable for a in r.get("assumptions", [])}),
            "scope": usable[-1].get("scope")}


def record_session(path: str | os.PathLike, result: dict, **context) -> dict:
    """Append one metered session to the JSON file at `path` (a resumable run's sessions add
    up) and return its content: {"sessions": [...], "total": combine(sessions)}."""
    import json

    from face_sentiment.paths import write_atomic
    path = Path(path)
    sessions = []
    if path.exists():
        try:
            sessions = list(json.loads(path.read_text()).get("sessions", []))
        except (OSError, ValueError, AttributeError):
            log.warning("%s is unreadable: starting its energy record afresh", path)
    sessions.append({**result, **context, "recorded_at": time.time()})
    content = {"sessions": sessions, "total": combine(sessions, result.get("task", ""))}
    write_atomic(path, json.dumps(content, indent=2) + "\n")
    return content
