"""Q-Prop's critic stability (issue 14): divergences, the mechanism, and what each fix buys.

    python -m reproduce.stability --results results --profile stable \\
        [--baseline qprop-c] [--reference trpo-b5000] [--show qprop-c-tclip,...] \\
        [--domains Swimmer] [--baseline-profile strong]       (or: make stability)

Reads the finished runs of one profile's tree (``<results>/<profile>/runs``; the counting
rule of :mod:`reproduce.compare`) and writes ``<results>/<profile>/stability.md`` and
``figures/stability_<Domain>.png/.svg``:

- **Divergences**, per (domain, variant): the seeds whose critic diverged
  (:mod:`qprop_tf.divergence`: TD loss > 100x the median of the earlier healthy ones), when it
  first did (env steps), the largest TD loss and |mean Q| of the run, and the iterations each
  run lasted: a run that crossed early and stopped (early stop) had less time to diverge;
  and whether the variant diverged on fewer seeds than the baseline, on the seeds both have
  (one-sided Fisher exact test, ``scipy.stats.fisher_exact``) and whether its largest TD
  losses are smaller (one-sided Mann-Whitney U, ``scipy.stats.mannwhitneyu``): a divergence
  that peaks at 1e2 and one that peaks at 1e9 both count once in the first test.
- **Episodes to threshold**, each variant next to the baseline (``--baseline``, the authors'
  critic) and next to the reference (``--reference``, TRPO at Q-Prop's batch) on the same
  seeds: median (censored = +inf), ratio with a bootstrap 95% CI and verdict, exactly as
  :mod:`reproduce.compare`; and the crossings that happened during a divergence (kept in the
  numbers, counted here).
- **Mechanism**, per run that logged them (code older than the fit statistics did not): the
  share of the critic's bootstrap actions mu(s') outside the action bounds
  (``critic_oob_fraction``), the largest |mu| and the largest |TD target| at such actions
  against the largest overall, each as a median over the ``WINDOW`` iterations before the
  first divergence (the run's last ``WINDOW`` for a run that never diverged). The
  hypothesis under test: the TD target Q'(s', mu(s')) is evaluated at a mean that drifts out
  of bounds, where the critic has no data. A switch that only clips mu(s') in the target
  (``qprop-c-tclip``) is its experiment on the same seeds.

- **After the peak**, per variant: the best and the last moving mean of the return
  (``SMOOTH`` iterations), the share of the best the run keeps at its end, and whether the
  variant keeps more than the baseline (one-sided Mann-Whitney U on the shares, shared
  seeds): Walker's policies collapse after their peak with a sane critic, which no
  divergence count shows.

The figure: per seed, the TD loss (log) and the batch return of the baseline and the shown
variants (``--show``; default: every variant), with the diverged stretches shaded.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from qprop_tf.progress import COLUMNS as C
from reproduce.compare import DomainResult, Side, counted_runs
from reproduce.compare_stats import fmt_median
from reproduce.results import Run
from reproduce.spec import EPISODE_STEPS, SpecError, check_profile, domains, profile_dir, threshold
from reproduce.stability_runs import (
    SMOOTH,
    Variant,
    after_peak,
    domain_variants,
    fewer_divergences_p,
    mechanism,
    reference_side,
    retains_more_p,
    smaller_losses_p,
)
from reproduce.table_format import fmt_num, markdown_table, text_table

AFTER_PEAK_NOTE = (
    "Read it on runs that went to their full budget (`stable-walker` has no early stop): a run "
    "that stopped early at its crossing has little or no stretch after its peak.")
DEFAULT_BASELINE = "qprop-c"
DEFAULT_REFERENCE = "trpo-b5000"


# ---------------------------------------------------------------------- outputs

def _seeds(xs: list[int]) -> str:
    return ", ".join(str(s) for s in xs) if xs else "none"


def _ratio_cell(r: DomainResult | None) -> str:
    if r is None:
        return "-"
    verdict = r.verdict.replace("A ", "variant ", 1) if r.verdict.startswith("A ") else \
        r.verdict
    return f"{r.ratio_text} on seeds {_seeds([x.seed for x in r.a.runs])}: {verdict}"


def divergence_rows(variants: list[Variant], baseline: str) -> list[dict[str, str]]:
    base = next((v for v in variants if v.algo == baseline), None)
    rows = []
    for v in variants:
        rec = v.records
        p, q = fewer_divergences_p(v, base), smaller_losses_p(v, base)
        first = [r.first_diverged_steps / EPISODE_STEPS for r in rec if r.diverged]
        rows.append({
            "variant": v.algo,
            "seeds finished": f"{len(rec)}" + (f" (+{v.excluded} not counted)"
                                               if v.excluded else ""),
            "diverged": f"{len(v.diverged_seeds)}/{len(rec)} (seeds {_seeds(v.diverged_seeds)})",
            "first divergence (episodes), median": fmt_num(float(np.median(first)))
            if first else "-",
            "max TD loss, median [max]": _med_max([r.max_loss for r in rec]),
            "max |mean Q|, median [max]": _med_max([r.max_abs_q for r in rec]),
            "iterations run, median": fmt_num(float(np.median([r.iterations for r in rec])))
            if rec else "-",
            "fewer than the baseline? Fisher p (one-sided, shared seeds)":
            "-" if math.isnan(p) else f"{p:.3g}",
            "smaller max TD loss? Mann-Whitney p (one-sided, shared seeds)":
            "-" if math.isnan(q) else f"{q:.3g}",
        })
    return rows


def _med_max(xs: list[float]) -> str:
    x = np.asarray([v for v in xs if math.isfinite(v)], float)
    return f"{x.max() if x.size == 1 else np.median(x):.3g} [{x.max():.3g}]" if x.size else "-"


def crossing_rows(variants: list[Variant], ref: Side) -> list[dict[str, str]]:
    rows = []
    for v in variants:
        s = Side(v.algo, v.runs)
        during = [r.seed for r in v.records if r.crossed_during_divergence]
        rows.append({"variant": v.algo, "crossed": s.seeds_cell(),
                     "median episodes [95% CI]": fmt_median(s.median),
                     "crossed during a divergence": _seeds(during),
                     "vs baseline: ratio [CI]": _ratio_cell(v.vs_baseline),
                     "vs reference: ratio [CI]": _ratio_cell(v.vs_reference)})
    if ref.runs:
        rows.append({"variant": f"{ref.algo} (reference)", "crossed": ref.seeds_cell(),
                     "median episodes [95% CI]": fmt_median(ref.median),
                     "crossed during a divergence": "-", "vs baseline: ratio [CI]": "-",
                     "vs reference: ratio [CI]": "-"})
    return rows


def after_peak_rows(variants: list[Variant], ref: Side, baseline: str) -> list[dict[str, str]]:
    """Per variant (and the reference): the best and the last moving mean of the return,
    and the share of the best that is left (median over seeds [smallest])."""
    base = next((v for v in variants if v.algo == baseline), None)
    rows = []
    for v in [*variants, Variant(f"{ref.algo} (reference)", ref.runs, 0, [], None, None)]:
        if not v.runs:
            continue
        peaks = [after_peak(r) for r in v.runs]
        kept = [p.retained for p in peaks if math.isfinite(p.retained)]
        p = retains_more_p(v, base) if v.runs is not ref.runs else math.nan
        rows.append({
            "variant": v.algo, "seeds": _seeds([r.seed for r in v.runs]),
            f"best {SMOOTH}-iteration mean return, median [range]": _med_range(
                [x.best for x in peaks]),
            "at episode, median": fmt_num(float(np.median([x.best_episodes for x in peaks]))),
            f"last {SMOOTH}-iteration mean, median [range]": _med_range([x.final for x in peaks]),
            "kept of the best, median [smallest]": (
                f"{np.median(kept):.0%} [{min(kept):.0%}]" if kept else "-"),
            "policy std at the end, median [range]": _med_range(
                [x.final_policy_std for x in peaks], ".2f"),
            "keeps more than the baseline? Mann-Whitney p (one-sided, shared seeds)":
            "-" if math.isnan(p) else f"{p:.3g}"})
    return rows


def _med_range(xs: list[float], spec: str = ".4g") -> str:
    x = np.asarray([v for v in xs if math.isfinite(v)], float)
    return (f"{np.median(x):{spec}} [{x.min():{spec}}, {x.max():{spec}}]" if x.size
            else "-")


def mechanism_rows(runs: list[Run], order: list[str]) -> list[dict[str, str]]:
    """One row per run that logged the fit statistics, in ``order`` of variants, by seed."""
    def g(x: float, spec: str = ".3g") -> str:
        return "-" if not math.isfinite(x) else format(x, spec)

    out = []
    rank = {a: i for i, a in enumerate(order)}
    for r in sorted(runs, key=lambda r: (rank.get(r.algo, len(rank)), r.algo, r.seed)):
        if C.critic_oob_fraction not in r.progress.columns:
            continue
        m = mechanism(r)
        out.append({"variant": r.algo, "seed": str(m.seed),
                    "diverged": "yes" if m.diverged else "no",
                    "iterations": m.window, "mu(s') out of bounds": g(m.oob_fraction, ".1%"),
                    "max |mu(s')|": g(m.max_abs_mu), "max |y|": g(m.target_max_abs),
                    "max |y| at out-of-bounds mu(s')": g(m.target_oob_max_abs)})
    return out


def load(results: Path, profile: str, baseline: str, reference: str,
         baseline_profile: str | None) -> tuple[list[Run], dict[tuple[str, str], int],
                                                list[str], list[str]]:
    """The counted runs of the profile's tree (and the baseline's and reference's from
    ``baseline_profile``'s), the unfinished ones per (domain, algo), the notes, and the
    profile's own domains."""
    check_profile(profile)
    own = _algos_in(results, profile)
    if baseline_profile:
        check_profile(baseline_profile)
        own -= {baseline, reference}
    counted = counted_runs(results, profile, own)
    runs, excluded, notes = counted.runs, dict(counted.excluded), list(counted.notes)
    seen = {r.domain for r in runs} | {d for d, _ in excluded}
    if baseline_profile:
        base = counted_runs(results, baseline_profile, {baseline, reference})
        runs, notes = runs + base.runs, notes + base.notes
        excluded.update(base.excluded)
    return runs, excluded, notes, [d for d in domains() if d in seen]


def roles(profile: str) -> tuple[str, str, str | None]:
    """(baseline, reference, baseline profile) from the profile's ``stability`` table in
    profiles.toml, else the defaults (``qprop-c``, ``trpo-b5000``, its own tree)."""
    table = check_profile(profile).get("stability", {})
    return (table.get("baseline", DEFAULT_BASELINE), table.get("reference", DEFAULT_REFERENCE),
            table.get("baseline_profile"))


def report(results: str | Path, profile: str, baseline: str = DEFAULT_BASELINE,
           reference: str = DEFAULT_REFERENCE, domain_list: list[str] | None = None,
           show: list[str] | None = None, baseline_profile: str | None = None
           ) -> tuple[Path, list[Path], str]:
    """Write ``stability.md`` and the figures; return their paths and the printed summary.

    ``baseline_profile``: read the baseline's and the reference's runs from that profile's
    tree instead (same rules, e.g. ``strong`` for ``stable-strong``)."""
    from reproduce.stability_plot import plot_stability

    results = Path(results)
    runs, excluded, notes, seen = load(results, profile, baseline, reference, baseline_profile)
    doms = domain_list or seen
    home = profile_dir(results, profile)
    cmd = (f"python -m reproduce.stability --results {results} --profile {profile} "
           f"--baseline {baseline} --reference {reference}"
           + (f" --domains {','.join(domain_list)}" if domain_list else "")
           + (f" --show {','.join(show)}" if show else "")
           + (f" --baseline-profile {baseline_profile}" if baseline_profile else ""))
    lines = [f"# Critic stability: profile `{profile}`", "", f"Regenerate: `{cmd}`", "",
             __doc__.split("\n\n", 2)[2].strip(), ""]
    printed: list[str] = []
    figs: list[Path] = []
    for d in doms:
        variants = domain_variants(runs, excluded, d, baseline, reference)
        ref = reference_side(runs, d, reference)
        div, cross = divergence_rows(variants, baseline), crossing_rows(variants, ref)
        mech = mechanism_rows([r for r in runs if r.domain == d], [v.algo for v in variants])
        older = sorted({r.algo for r in runs if r.domain == d and r.algo != reference
                        and C.critic_oob_fraction not in r.progress.columns})
        peak = after_peak_rows(variants, ref, baseline)
        lines += [f"## {d} (threshold {threshold(d):g})", "", "### Divergences", "",
                  markdown_table(pd.DataFrame(div)) if div else "(no Q-Prop runs)", "",
                  "### Episodes to threshold", "",
                  markdown_table(pd.DataFrame(cross)) if cross else "(no runs)", "",
                  "### After the peak: how much of its best return a run keeps", "",
                  AFTER_PEAK_NOTE, "",
                  markdown_table(pd.DataFrame(peak)) if peak else "(no runs)", ""]
        if mech or older:
            lines += ["### Mechanism: the critic's fit statistics before the first divergence",
                      "", markdown_table(pd.DataFrame(mech)) if mech else "(none logged)", ""]
            if older:
                lines += [f"Not logged (runs of code older than the fit statistics): "
                          f"{', '.join(older)}.", ""]
        shown = [v.algo for v in variants if v.algo != baseline and (not show or v.algo in show)]
        fig = plot_stability([r for r in runs if r.domain == d and r.algo in
                              {baseline, *shown}], d, baseline, shown, home / "figures")
        if fig:
            figs += fig
            lines += [f"![stability {d}](figures/{fig[0].name})", ""]
        printed += [f"{d}:", text_table(pd.DataFrame(div)) if div else "(no Q-Prop runs)",
                    text_table(pd.DataFrame(cross)) if cross else "",
                    text_table(pd.DataFrame(peak)) if peak else "", ""]
    lines += ["## Runs not counted, or flagged", "",
              *([f"- {n}" for n in notes] or ["- none"]), ""]
    md = home / "stability.md"
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text("\n".join(lines))
    return md, figs, "\n".join(printed)


def _algos_in(results: Path, profile: str) -> set[str]:
    root = profile_dir(results, profile) / "runs"
    return {p.name for p in root.glob("*/*") if p.is_dir()}


def _split(text: str | None) -> list[str] | None:
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reproduce.stability", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results")
    p.add_argument("--profile", default="stable", help="whose tree (default: %(default)s)")
    p.add_argument("--baseline", help="the authors' critic (default: the profile's "
                   f"`stability` table in profiles.toml, else {DEFAULT_BASELINE})")
    p.add_argument("--reference", help="TRPO (default: the profile's `stability` table, "
                   f"else {DEFAULT_REFERENCE})")
    p.add_argument("--baseline-profile", help="read the baseline's and the reference's runs "
                   "from this profile's tree (same rules; e.g. strong for stable-strong; "
                   "default: the profile's `stability` table)")
    p.add_argument("--domains", help="comma-separated domains (default: every one with runs)")
    p.add_argument("--show", help="comma-separated variants drawn next to the baseline "
                                  "(default: every one)")
    args = p.parse_args(argv)
    doms = _split(args.domains)
    bad = [d for d in doms or [] if d not in domains()]
    if bad:
        p.error(f"unknown domain(s) {', '.join(bad)}; valid: {', '.join(domains())}")
    try:
        base, ref, base_profile = roles(args.profile)
        md, figs, printed = report(args.results, args.profile, args.baseline or base,
                                   args.reference or ref, doms, _split(args.show),
                                   args.baseline_profile or base_profile)
    except SpecError as exc:
        print(f"reproduce.stability: error: {exc}", file=sys.stderr)
        return 2
    print(printed)
    for path in [md, *figs]:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
