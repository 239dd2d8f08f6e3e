"""The corpus job behind `tart classify`: reading a corpus in chunks, labelling it resumably, the Ray engine."""
