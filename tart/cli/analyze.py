"""`tart analyze NAME ...`: one module per analysis, tart/cli/analyze_<NAME>.py, each with `add_arguments`
and `run` like every command; they import their analysis (tart/analysis/<name>.py) only when run."""
DEST = "analysis"
SUBCOMMANDS = {
    "invariance": ("tart.cli.analyze_invariance", "shared invariances (Hard/Soft-SCoPE) of a target vs a reference model"),
    "slices": ("tart.cli.analyze_slices", "per-slice accuracy of several models, significance, routing by slice"),
    "emergence": ("tart.cli.analyze_emergence", "MINE mutual information across each block; emergence by layer"),
    "components": ("tart.cli.analyze_components", "direct logit attribution to heads/MLPs; component reweighting"),
}
