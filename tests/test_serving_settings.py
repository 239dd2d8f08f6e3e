"""Serving settings (`tart.serving.settings`): defaults < TOML file < TART_* variables, bad values named,
when API keys are required."""
from __future__ import annotations

import pytest

from tart.serving.settings import Settings, load_settings


def test_settings_precedence_defaults_file_env(tmp_path):
    assert load_settings(env={}) == Settings()
    cfg = tmp_path / "serve.toml"
    cfg.write_text('[serving]\nmax_texts = 10\nembedder = "minilm-l6"\nstore_path = "~/x.sqlite3"\n')
    s = load_settings(cfg, env={})
    assert (s.max_texts, s.embedder) == (10, "minilm-l6") and not s.store_path.startswith("~")
    s = load_settings(env={"TART_CONFIG": str(cfg), "TART_MAX_TEXTS": "20", "TART_CHECKPOINT": "/ckpt"})
    assert (s.max_texts, s.embedder, s.checkpoint) == (20, "minilm-l6", "/ckpt")
    assert load_settings(cfg, env={"TART_MAX_TEXTS": ""}).max_texts == 10  # an empty variable is unset


@pytest.mark.parametrize("env,needle", [
    ({"TART_MAX_TEXTS": "many"}, "max_texts = 'many': input should be a valid integer"),
    ({"TART_MAX_TEXTS": "0"}, "max_texts = '0': input should be greater than or equal to 1"),
    ({"TART_N_PERMUTATIONS": "20"}, "exceeds max_permutations"),
    ({"TART_EMBED_DTYPE": "fp16"}, "embed_dtype = 'fp16': input should be 'auto', 'bfloat16' or 'float32'"),
    ({"TART_REQUIRE_API_KEY": "maybe"}, "require_api_key = 'maybe': input should be 'auto', 'yes' or 'no'"),
    ({"TART_MAX_HEAD_TOKENS": "0"}, "max_head_tokens = '0': input should be greater"),
    ({"TART_BODY_TIMEOUT_S": "0"}, "body_timeout_s = '0': input should be greater")])
def test_bad_settings_are_named(env, needle):
    with pytest.raises(ValueError, match=needle):
        load_settings(env=env)


def test_unknown_setting_in_file(tmp_path):
    cfg = tmp_path / "serve.toml"
    cfg.write_text("max_txts = 3\n")
    with pytest.raises(ValueError, match="serve.toml: unknown setting 'max_txts'; known: checkpoint, "):
        load_settings(cfg, env={})


def test_api_keys_required_off_loopback():
    assert not load_settings(env={}).keys_required  # 127.0.0.1 by default: no key needed
    for host in ("0.0.0.0", "192.168.1.5", "example.org", "::"):
        with pytest.raises(ValueError, match="is not a loopback address, so API keys are required"):
            load_settings(env={"TART_HOST": host})
    assert load_settings(env={"TART_HOST": "0.0.0.0", "TART_API_KEYS": "k1, k2"}).keys == {"k1", "k2"}
    assert not load_settings(env={"TART_HOST": "0.0.0.0", "TART_REQUIRE_API_KEY": "no"}).keys  # explicitly off
    for host in ("localhost", "127.0.0.2", "::1"):
        assert not load_settings(env={"TART_HOST": host}).keys_required
    with pytest.raises(ValueError, match="require_api_key is 'yes', so API keys are required"):
        load_settings(env={"TART_REQUIRE_API_KEY": "yes"})  # on loopback: the setting is the cause, not the host
