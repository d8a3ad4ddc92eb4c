"""Common notebook set-up: quiet library chatter, tables designed for print, consistent figures.

`setup()` makes every DataFrame a notebook displays a `report_table`: a value and its interval
in one cell ("0.633 (0.551-0.710)", from columns `x`, `x_low`/`x_ci_low`, `x_high`/`x_ci_high`),
counts as integers, other numbers to 3 significant figures, and at most MAX_COLUMNS columns
side by side (a wider table is shown in blocks of columns, the row labels repeated), so that
nothing is cut at the edge of an A4 page.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import warnings

import pandas as pd

MAX_COLUMNS = 7
INTERVAL_SUFFIXES = (("_ci_low", "_ci_high"), ("_low", "_high"))


def format_number(value) -> str:
    """A cell for a reader: integers whole, other numbers to 3 significant figures."""
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        return "" if value is None else str(value)
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value)}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _interval(low, high) -> str:
    """'0.61-0.65', or '-6.3 to -3.7' when a bound is negative (a dash would read as minus)."""
    joint = " to " if (isinstance(low, numbers.Number) and low < 0) or (
        isinstance(high, numbers.Number) and high < 0) else "-"
    return f"{format_number(low)}{joint}{format_number(high)}"


def merge_intervals(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns `x`, `x_low`, `x_high` (or `x_ci_low`, `x_ci_high`) as one column of cells
    'x (low-high)'; other columns as they are."""
    if isinstance(frame.columns, pd.MultiIndex):
        return frame
    out = frame.copy()
    for name in list(frame.columns):
        for low_suffix, high_suffix in INTERVAL_SUFFIXES:
            low, high = f"{name}{low_suffix}", f"{name}{high_suffix}"
            if low in out.columns and high in out.columns and name in out.columns:
                out[name] = [f"{format_number(v)} ({_interval(a, b)})"
                             if isinstance(v, numbers.Number) and not pd.isna(v) else
                             format_number(v)
                             for v, a, b in zip(out[name], out[low], out[high], strict=True)]
                out = out.drop(columns=[low, high])
                break
    return out


def _words(label):
    return label.replace("_", " ") if isinstance(label, str) else label


def report_table(frame: pd.DataFrame, max_columns: int = MAX_COLUMNS) -> str:
    """HTML of a DataFrame designed for print (see the module docstring)."""
    table = merge_intervals(frame).applymap(format_number) if len(frame.columns) else frame
    # snake_case labels as words, so that long headers can wrap
    table = table.rename(columns=_words, index=_words).rename_axis(
        index=[_words(n) for n in table.index.names],
        columns=[_words(n) for n in table.columns.names])
    # row labels take room too: one column fewer for each index level past the first
    width = max(2, max_columns - (table.index.nlevels - 1))
    blocks = [table.iloc[:, start:start + width]
              for start in range(0, max(len(table.columns), 1), width)]
    return "\n".join(block.to_html(escape=True, border=0) for block in blocks)


def setup(dpi: int = 90) -> None:
    """Call first in every notebook."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    logging.getLogger().setLevel(logging.ERROR)  # Beam and absl log through the root logger
    for name in ("tensorflow", "absl", "h5py", "matplotlib", "PIL"):  # own handlers/levels
        logging.getLogger(name).setLevel(logging.ERROR)
    import matplotlib.pyplot as plt

    pd.set_option("display.max_colwidth", 120)
    pd.set_option("display.width", 160)
    plt.rcParams["figure.dpi"] = dpi
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, report_table)
