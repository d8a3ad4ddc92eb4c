"""Common notebook set-up: quiet library chatter, readable tables, consistent figures."""

from __future__ import annotations

import logging
import os
import warnings


def setup(dpi: int = 90) -> None:
    """Call first in every notebook."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    logging.getLogger().setLevel(logging.ERROR)  # Beam and absl log through the root logger
    import matplotlib.pyplot as plt
    import pandas as pd

    pd.set_option("display.max_colwidth", 120)
    pd.set_option("display.width", 160)
    plt.rcParams["figure.dpi"] = dpi
