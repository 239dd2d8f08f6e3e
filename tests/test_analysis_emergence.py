"""tart.analysis.emergence: MINE on Gaussians with known information, block states, the CLI."""
import json

import numpy as np
import pytest
import torch

from tart.analysis.emergence import block_states, emergence, mine_estimate, project
from tart.cli import main

TEXTS = [f"{w}: a word about {w} and more words" for w in
         ["cat", "dog", "bread", "soup", "a horse", "pasta", "rice", "a fox", "tea", "an owl", "milk", "a bee"]]


def gaussians(rho, d, n, seed):
    """x ~ N(0, I_d), z = rho x + sqrt(1 - rho^2) e: I(x; z) = -d/2 log(1 - rho^2) nats."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    return x, rho * x + np.sqrt(1 - rho ** 2) * rng.standard_normal((n, d))


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_mine_on_correlated_gaussians_within_10_percent(rho):
    torch.set_num_threads(1)
    d = 2
    truth = -0.5 * d * np.log(1 - rho ** 2)  # 0.288 and 1.661 nats
    est = mine_estimate(*gaussians(rho, d, 10_000, seed=1), steps=1000, batch_size=512, seed=1)
    assert abs(est - truth) / truth < 0.10, (est, truth)


def test_mine_on_independent_inputs_is_near_zero():
    rng = np.random.default_rng(2)
    est = mine_estimate(rng.standard_normal((10_000, 2)), rng.standard_normal((10_000, 2)),
                        steps=500, batch_size=512, seed=2)
    assert abs(est) < 0.05, est


@pytest.mark.slow
@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_mine_higher_dimension_several_seeds(rho):
    d = 4
    truth = -0.5 * d * np.log(1 - rho ** 2)
    ests = [mine_estimate(*gaussians(rho, d, 20_000, seed=s), steps=2000, batch_size=512, seed=s) for s in range(3)]
    assert abs(np.mean(ests) - truth) / truth < 0.10, (ests, truth)


def test_mine_rejects_bad_input():
    x = np.zeros((100, 2))
    with pytest.raises(ValueError, match="same number of samples"):
        mine_estimate(x, np.zeros((99, 2)))
    with pytest.raises(ValueError, match="NaN"):
        mine_estimate(np.full((100, 2), np.nan), x)
    with pytest.raises(ValueError, match="non-empty"):
        mine_estimate(np.zeros((0, 2)), np.zeros((0, 2)))
    with pytest.raises(ValueError, match="too few"):
        mine_estimate(x[:3], x[:3])


def test_project_is_standardised_and_shared():
    rng = np.random.default_rng(0)
    states = rng.standard_normal((3, 50, 20)) * np.arange(1, 21)  # coordinates of very different scales
    out = project(states, 4, seed=0)
    assert out.shape == (3, 50, 4)
    assert np.allclose(out.mean(1), 0, atol=1e-5) and np.allclose(out.std(1), 1, atol=1e-3)
    assert np.allclose(project(states[:1], 4, seed=0), out[:1])  # same matrix for every state


def test_block_states_match_the_models_hidden_states():
    """Hooks give hidden_states[0..n-1] exactly and the last block's output before the final norm."""
    from tart.lm.embedder import load_embedder

    torch.set_num_threads(1)
    last, first, lengths = block_states(TEXTS[:4], "smollm2-135m", positions=3, batch_size=2, progress=False)
    lm, tok = load_embedder("smollm2-135m").model, load_embedder("smollm2-135m").tokenizer
    n = lm.config.num_hidden_layers
    assert last.shape == (n + 1, 4, lm.config.hidden_size) and first.shape == (n + 1, 4, 3, lm.config.hidden_size)
    with torch.inference_mode():
        ids = torch.tensor([tok(TEXTS[1])["input_ids"]])
        hs = lm(input_ids=ids, output_hidden_states=True).hidden_states
    assert lengths[1] == ids.shape[1]
    for l in (0, 1, n // 2, n - 1):
        assert np.allclose(last[l, 1], hs[l][0, -1].numpy(), atol=1e-4)
        assert np.allclose(first[l, 1], hs[l][0, :3].numpy(), atol=1e-4)
    # transformers' last entry is after the final RMSNorm; ours is the raw block output
    assert not np.allclose(last[n, 1], hs[n][0, -1].numpy(), atol=1e-3)
    with torch.inference_mode():
        normed = lm.norm(torch.from_numpy(last[n, 1:2])).numpy()
    assert np.allclose(normed[0], hs[n][0, -1].numpy(), atol=1e-4)


def test_emergence_report_small_run():
    torch.set_num_threads(1)
    report = emergence(TEXTS, "smollm2-135m", layers=[0, 29], positions=2, dim=2, steps=5, batch_size=8,
                       hidden=8, repeats=2, holdout=0.25, progress=False)
    assert {"model", "n_texts", "n_blocks", "positions", "dim", "mine", "seed", "units", "formula",
            "layers", "best_layer", "best_embedding_layer", "seconds"} <= set(report)
    assert [r["layer"] for r in report["layers"]] == [0, 29]
    for r in report["layers"]:
        assert len(r["micro_mi"]) == 2
        values = [r["macro_mi"], r["macro_mi_sd"], r["micro_mi_mean"], r["emergence"], r["emergence_sd"], *r["micro_mi"]]
        assert np.isfinite(values).all()
        assert r["emergence"] == pytest.approx(r["macro_mi"] - r["micro_mi_mean"])
    assert report["best_layer"] in (0, 29) and report["best_embedding_layer"] == report["best_layer"] + 1
    json.dumps(report)


def test_cli_writes_json_and_png(tmp_path, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n")
    out, png = tmp_path / "e.json", tmp_path / "e.png"
    code = main(["analyze", "emergence", "--texts", str(texts), "--layers", "3", "--steps", "3", "--positions", "2",
                 "--dim", "2", "--batch-size", "8", "--hidden", "8", "--json", str(out), "--plot", str(png), "--quiet"])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["best_layer"] == 3 and report["texts"] == str(texts)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_reads_a_bundled_dataset_and_csv(tmp_path):
    from tart.analysis.emergence import read_texts

    assert len(read_texts("wordnet-animal-food")) == 800
    csv = tmp_path / "t.csv"
    csv.write_text("id,body\n1,first text\n2,second text\n")
    assert read_texts(str(csv), text_column="body") == ["first text", "second text"]
    with pytest.raises(ValueError, match="column 'text' not found"):
        read_texts(str(csv))


def test_bad_input_gets_clear_errors(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    assert main(["analyze", "emergence", "--texts", str(empty)]) == 2
    assert "no texts" in capsys.readouterr().err
    assert main(["analyze", "emergence", "--texts", str(tmp_path / "missing.txt")]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown model"):
        emergence(TEXTS, "no-such-model")
    with pytest.raises(ValueError, match="out of range"):
        emergence(TEXTS, "smollm2-135m", layers=[30])
    with pytest.raises(ValueError, match="too few"):
        emergence(TEXTS[:3], "smollm2-135m")
    with pytest.raises(ValueError, match="not a causal LM"):
        block_states(TEXTS, "minilm-l6", progress=False)
    with pytest.raises(ValueError, match="fewer than positions"):
        block_states(["cat"], "smollm2-135m", positions=4, progress=False)
    with pytest.raises(ValueError, match="no texts"):
        block_states([], "smollm2-135m")
