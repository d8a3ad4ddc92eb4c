"""Face Sentiment: a research workbench for facial expression recognition on FER2013.

`from face_sentiment import FaceSentiment` gives the TensorFlow-free predictor
(`face_sentiment.live.analyzer`); it is imported on first use, so `import face_sentiment`
itself loads nothing (no numpy, no OpenCV, never TensorFlow).
"""

__version__ = "0.1.0"
__all__ = ["FaceSentiment", "__version__"]

_LAZY = {"FaceSentiment": "face_sentiment.live.analyzer"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
