"""TART: a plug-in reasoning head for few-shot classification on top of frozen models."""
from tart.reasoning import TartConfig, TartReasoningModel

__all__ = ["TartConfig", "TartReasoningModel"]
__version__ = "0.1.0"
