"""Our side of reproduce.crosscheck: case construction and the PASS/FAIL logic (no peer venv)."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import tensorflow as tf

from reproduce import crosscheck as cc


def _sb3_names() -> dict[str, str]:
    """SB3_NAMES from the peer script, read without importing torch."""
    tree = ast.parse((Path(cc.__file__).parent / "sb3_crosscheck.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SB3_NAMES":
            return ast.literal_eval(node.value)
    raise AssertionError("SB3_NAMES not found")


def test_exported_weights_reproduce_policy() -> None:
    log_std = (-0.3, 0.1, -0.5)
    policy, batch = cc.make_trpo_case(log_std, seed=3, n=64)
    params = {v.path.removeprefix(policy.name + "/"): v.numpy()
              for v in policy.trainable_variables}
    assert set(params) == set(_sb3_names())  # every variable has its sb3 counterpart
    np.testing.assert_allclose(params["log_std"], log_std, atol=1e-7)
    mean = cc.numpy_mean(params, batch["obs"])
    np.testing.assert_allclose(mean, policy(tf.constant(batch["obs"])).numpy(), atol=1e-5)
    std = np.exp(params["log_std"])
    logp = (-0.5 * np.sum(((batch["act"] - mean) / std) ** 2, axis=1) - np.sum(np.log(std))
            - 1.5 * math.log(2 * math.pi))
    np.testing.assert_allclose(batch["logp"], logp, atol=1e-4)
    assert abs(batch["signal"].mean()) < 1e-6 and abs(batch["signal"].std() - 1) < 1e-5
    flat = np.concatenate([a.ravel() for a in params.values()])
    assert batch["v"].shape == flat.shape
    back = cc.unflatten(flat, params)
    assert all(np.array_equal(back[k], params[k]) for k in params)
    assert cc.gauss_kl(mean, params["log_std"], mean, params["log_std"]) == 0.0
    assert cc.gauss_kl(mean, params["log_std"], mean + 0.1, params["log_std"]) > 0.0


def test_report_flags_perturbed_results() -> None:
    x = np.random.default_rng(0).standard_normal(1000)
    assert cc.compare("c", "same", x, x.copy(), 1e-4).status == "PASS"
    assert cc.compare("c", "tiny", x * (1 + 5e-5), x, 1e-4).status == "PASS"
    bad = cc.compare("c", "perturbed", x + 2e-4 * np.abs(x).max() * (np.arange(1000) == 7),
                     x, 1e-4)
    assert bad.status == "FAIL" and math.isclose(bad.rel_diff, 2e-4, rel_tol=1e-6)
    assert cc.compare("c", "sign", -x, x, 1e-4).status == "FAIL"
    assert cc.compare("c", "k", 2.0, 2.0, 0.0).status == "PASS"
    assert cc.compare("c", "k", 3.0, 2.0, 0.0).status == "FAIL"
    assert cc.compare("c", "nan", np.nan, 1.0, 1e-3).status == "FAIL"
    assert cc.compare("c", "info", x + 1, x, None).status == "INFO"
    report = cc.render([cc.compare("c", "ok", x, x, 1e-4), bad], ["- note"])
    assert "| c | perturbed |" in report and "FAIL" in report and "**1 FAIL**" in report


def test_gae_case_matches_sb3_recursion() -> None:
    """Our GAE on the case equals sb3's recursion (re-typed here) on sb3's inputs."""
    g = cc.make_gae_case()
    assert g["lengths"].sum() == cc.T and g["gae__episode_starts"].sum() == len(g["lengths"])
    ours = cc.run_ours_gae(g)
    r, v, starts = (g[f"gae__{k}"].astype(np.float64)
                    for k in ("rewards", "values", "episode_starts"))
    adv, last = np.zeros(cc.T), 0.0
    for t in reversed(range(cc.T)):
        nonterminal = 1.0 - (float(g["gae__done"]) if t == cc.T - 1 else starts[t + 1])
        next_v = float(g["gae__last_value"]) if t == cc.T - 1 else v[t + 1]
        delta = r[t] + cc.GAMMA * next_v * nonterminal - v[t]
        last = adv[t] = delta + cc.GAMMA * cc.LAM * nonterminal * last
    np.testing.assert_allclose(ours["adv"], adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours["ret"], adv + v, rtol=1e-5, atol=1e-5)
