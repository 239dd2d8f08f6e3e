"""HTTP serving of TART few-shot classification (BentoML): see docs/serving.md."""
