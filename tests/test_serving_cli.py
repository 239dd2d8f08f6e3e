"""`tart serve` (`tart.serving.cli`): arguments, environment, bad input reported before the server starts."""
from __future__ import annotations

import argparse

import pytest


def test_serve_parser_and_environment(tmp_path):
    from tart.serving.cli import add_arguments, server_environment

    parser = argparse.ArgumentParser()
    add_arguments(parser.add_subparsers(dest="command").add_parser("serve"))
    args = parser.parse_args(["serve"])
    assert (args.host, args.port) == ("127.0.0.1", 3000)
    args = parser.parse_args(["serve", "--port", "4000", "--embedder", "minilm-l6", "--store", str(tmp_path / "s.db")])
    env = server_environment(args, base={})
    assert env["TART_EMBEDDER"] == "minilm-l6" and env["TART_STORE_PATH"] == str(tmp_path / "s.db")
    assert env["BENTOML_DO_NOT_TRACK"] == "true" and "TART_CHECKPOINT" not in env


def test_run_reports_bad_input_before_starting(tmp_path):
    from tart.serving.cli import run

    base = dict(host="127.0.0.1", port=3000, config=None, checkpoint=None, embedder=None, store=None)
    with pytest.raises(FileNotFoundError, match="no head checkpoint"):
        run(argparse.Namespace(**{**base, "checkpoint": str(tmp_path / "missing")}))
    from tart.head.model import TartConfig, TartReasoningModel

    TartReasoningModel(TartConfig()).save_pretrained(tmp_path / "head")
    with pytest.raises(ValueError, match="unknown model 'no-such-model'"):
        run(argparse.Namespace(**{**base, "checkpoint": str(tmp_path / "head"), "embedder": "no-such-model"}))
    with pytest.raises(ValueError, match="--port"):
        run(argparse.Namespace(**{**base, "port": 70000}))


def test_serve_refuses_a_public_host_without_keys(tmp_path):
    from tart.serving.cli import run

    args = argparse.Namespace(host="0.0.0.0", port=3000, config=None, checkpoint=None, embedder=None, store=None)
    with pytest.raises(ValueError, match="TART_API_KEYS"):
        run(args)


def test_a_slow_start_step_says_what_it_is_doing(monkeypatch, capsys):
    """The first `tart serve` converts the GGUF embedder (about 100 s here): it must say so, not sit silent."""
    import time

    import tart.lm.registry
    from tart.serving import cli

    monkeypatch.setattr(cli, "SLOW_STEP_S", 0.05)
    monkeypatch.setattr(tart.lm.registry, "resolve_model_dir", lambda name: time.sleep(0.5))  # a slow conversion
    monkeypatch.setattr(cli.os, "execve", lambda *a: None)  # stop before becoming `bentoml serve`
    cli.run(argparse.Namespace(host="127.0.0.1", port=3000, config=None, checkpoint=None,
                                         embedder="minilm-l6", store=None))
    err = capsys.readouterr().err
    assert "tart serve: preparing the embedder 'minilm-l6' (the first start converts a GGUF model" in err
    assert err.index("preparing the embedder") < err.index("done in") < err.index("tart serve: http://")
