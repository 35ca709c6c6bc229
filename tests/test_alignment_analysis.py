"""The alignment study's analysis on synthetic tables with known answers: associations over configurations,
the bootstrap's unit, the comparison of measures, the dial's dose-response, curves over training."""
import numpy as np
import pandas as pd
import pytest

from xlt_helpers.report import alignment_study as aa

CONFIGS = [("translit", "parallel", ""), ("translit", "nonparallel", ""), ("translit", "other_domain", ""),
           ("translit", "nonparallel", "half"), ("translit+inv", "parallel", ""), ("translit+perm", "parallel", ""),
           ("translit+syntax:fr", "parallel", "")]


def _rows(values: dict, protocols=("trained",), seeds=(0, 1, 2), tasks=("pos",), steps=()) -> pd.DataFrame:
    """results.csv rows: ``values[(config index, seed)] = (measures dict, delta_sup)``; each protocol is a
    variant sharing the alignment rows (as the runner counts a shared step in each variant)."""
    rows = []
    for (c, seed), (measures, delta) in values.items():
        tr, corpus, tag = CONFIGS[c]
        for protocol in protocols:
            variant = f"{protocol}:{tag}" if tag else protocol
            base = dict(language="en", transformation=tr, corpus_setting=corpus, variant=variant, seed=seed,
                        scale="cpu")
            for m, v in measures.items():
                rows.append({**base, "task": "alignment", "setting": "none", "metric": m, "value": v,
                             "step": f"align/{c}/{seed}"})
            for s in steps:
                rows.append({**base, "task": "alignment", "setting": "none", "metric": f"alignment_at_1_step{s}",
                             "value": measures["alignment_at_1"] * s / max(steps), "step": f"align/{c}/{seed}"})
            rows.append({**base, "task": "alignment", "setting": "none", "metric": "chance", "value": 0.001,
                         "step": f"align/{c}/{seed}"})
            for task in tasks:
                rows.append({**base, "task": task, "setting": "delta", "metric": "delta_sup", "value": delta,
                             "step": f"transfer/{c}/{seed}/{protocol}"})
    return pd.DataFrame(rows)


def _monotone(seeds=(0, 1, 2), noise=0.0):
    rng = np.random.default_rng(0)
    return {(c, s): ({"alignment_at_1": 0.1 * c + 0.01 * s, "cka_layer1": rng.random()},
                     -0.5 + 0.5 * (0.1 * c + 0.01 * s) + noise * rng.normal()) for c in range(7) for s in seeds}


def test_perfectly_monotone_gives_rho_one_with_a_tight_interval():
    models = aa.measures_table(_rows(_monotone()))
    assert len(models) == 21 and set(models.configuration) >= {"en translit", "en translit nonparallel half"}
    table, _ = aa.association(models, ["alignment_at_1"])
    rho = table[table.statistic == "spearman_rho"].iloc[0]
    assert rho.estimate == 1.0 and rho.ci_low > 0.99 and rho.n_models == 21 and rho.n_configurations == 7
    assert table[table.statistic == "spearman_rho_configurations"].estimate.iloc[0] == 1.0
    slope = table[table.statistic == "ols_slope"].iloc[0]
    assert (slope.estimate, slope.ci_low, slope.ci_high) == pytest.approx((0.5, 0.5, 0.5))  # delta = 0.5 P@1 - 0.5


def test_the_seeds_of_a_configuration_are_resampled_as_one_unit():
    one = {(c, 0): v for (c, s), v in _monotone(seeds=(0,), noise=0.05).items()}
    copies = {(c, s): one[(c, 0)] for c in range(7) for s in (0, 1, 2)}   # three identical seeds per configuration
    t1, _ = aa.association(aa.measures_table(_rows(one, seeds=(0,))), ["alignment_at_1"])
    t3, _ = aa.association(aa.measures_table(_rows(copies)), ["alignment_at_1"])
    for name in ("spearman_rho", "ols_slope", "ols_r2"):
        a, b = (t[t.statistic == name].iloc[0] for t in (t1, t3))
        # resampling configurations: copies add no information, so the intervals are the same
        assert (a.estimate, a.ci_low, a.ci_high) == pytest.approx((b.estimate, b.ci_low, b.ci_high))
    assert t3.n_models.iloc[0] == 21 and t3.n_configurations.iloc[0] == 7


def test_configuration_bootstrap_draws_whole_configurations():
    sizes = np.array([3, 1, 2, 3])
    draws = []
    est, dist = aa.configuration_bootstrap(list("abcd"), lambda idx: [sizes[idx].sum(), len(idx)], n_resamples=200)
    assert est.tolist() == [9, 4] and dist.shape == (2, 200)
    assert (dist[1] == 4).all() and set(np.unique(dist[0])) <= set(range(4, 13))
    draws = dist[0]
    assert draws.std() > 0                                            # resamples differ


def test_wls_down_weights_a_noisy_configuration():
    rng = np.random.default_rng(3)
    values = {(c, s): ({"alignment_at_1": 0.1 * c + 0.01 * s}, 0.3 * (0.1 * c + 0.01 * s) + 0.002 * rng.normal())
              for c in range(7) for s in range(3)}
    values[(6, 0)] = ({"alignment_at_1": 0.6}, 0.9)                   # one wild run
    models = aa.measures_table(_rows(values))
    models["delta_sup_se"] = np.where((models.configuration == "en translit+syntax:fr") & (models.seed == 0), 1.0, 0.01)
    table, _ = aa.association(models, ["alignment_at_1"])
    ols, wls = (table[table.statistic == s].estimate.iloc[0] for s in ("ols_slope", "wls_slope"))
    assert abs(wls - 0.3) < 0.02 < abs(ols - 0.3)
    models.loc[0, "delta_sup_se"] = np.nan                            # a missing se: no WLS rather than a wrong one
    table, _ = aa.association(models, ["alignment_at_1"])
    assert np.isnan(table[table.statistic == "wls_slope"].estimate.iloc[0])


def test_the_better_measure_wins_with_an_interval_above_zero():
    models = aa.measures_table(_rows(_monotone()))
    assert aa.measures(models) == ["alignment_at_1", "cka_layer1"]
    table, dist = aa.association(models, aa.measures(models))
    comp = aa.compare_measures(table, dist)
    rho = comp[comp.statistic == "spearman_rho"].iloc[0]
    assert rho.best == "alignment_at_1" and rho.other == "cka_layer1" and rho.ci_low > 0


def test_the_best_contextual_measure_and_finding_5_rows():
    values = {k: ({**m, "contextual_at_1_layer1": m["alignment_at_1"] ** 2, "cka_layer1": m["cka_layer1"]}, d)
              for k, (m, d) in _monotone().items()}
    assoc, _ = aa.association_tables(aa.measures_table(_rows(values, tasks=("pos", "ner"))), n_resamples=100)
    assert aa.best_measure(assoc) == "contextual_at_1_layer1"            # static P@1 left out by default
    five = aa.scorecard_correlations(assoc)
    assert five.task.tolist() == ["pos", "ner"] and (five.spearman_rho == 1.0).all() and (five.n_models == 21).all()
    assert five.predictor.iloc[0] == "alignment_at_1, en, trained"


def test_too_few_configurations_give_no_association():
    few = {k: v for k, v in _monotone().items() if k[0] < 3}
    table, dist = aa.association(aa.measures_table(_rows(few)), ["alignment_at_1"])
    assert table.empty and dist == {}


def test_association_tables_keep_protocols_apart():
    rows = _rows(_monotone(), protocols=("trained", "frozen"), tasks=("pos", "ner"))
    models = aa.measures_table(rows)
    assert set(models.protocol) == {"trained", "frozen"} and set(models.tag) == {"", "half"}
    assoc, comp = aa.association_tables(models, n_resamples=200)
    assert set(map(tuple, assoc[["protocol", "task"]].drop_duplicates().to_numpy())) == {
        ("trained", "pos"), ("trained", "ner"), ("frozen", "pos"), ("frozen", "ner")}
    assert (assoc.n_models == 21).all() and len(comp)


def _dial_rows():
    weights = [0.0, 0.01, 0.1, 1.0, 10.0]
    rows, configs = [], []
    for k, w in enumerate(weights):
        tag = "" if w == 0 else f"align{w:g}"
        for seed in range(3):
            p1 = 0.01 + 0.2 * k + 0.01 * seed
            step = f"align/{k}/{seed}"
            base = dict(language="en", transformation="translit+inv", corpus_setting="parallel",
                        variant=f"trained:{tag}" if tag else "trained", seed=seed, scale="cpu")
            rows += [{**base, "task": "alignment", "setting": "none", "metric": "alignment_at_1", "value": p1, "step": step},
                     {**base, "task": "pos", "setting": "delta", "metric": "delta_sup", "value": -0.6 + 0.1 * k + 0.005 * seed,
                      "step": f"t/{k}/{seed}"}]
            if w > 0:
                rows.append({**base, "task": "alignment", "setting": "none", "metric": "alignment_at_1_heldout",
                             "value": p1 / 2, "step": step})
            configs.append({"step": step, "pretrain.objectives": str(["mlm", "align"] if w else ["mlm"]),
                            "pretrain.align_weight": w if w else 10.0})
    return pd.DataFrame(rows), pd.DataFrame(configs)


def test_the_dial_dose_response_rises_with_the_weight():
    rows, configs = _dial_rows()
    models = aa.measures_table(rows, configs)
    assert sorted(models.align_weight.unique()) == [0.0, 0.01, 0.1, 1.0, 10.0]    # no align objective: weight 0
    assert aa.correlation_models(models).align_weight.eq(0).all()
    dial = aa.dial_models(models)
    dose = aa.dose_response(dial)
    assert dose.align_weight.tolist() == [0.0, 0.01, 0.1, 1.0, 10.0] and (dose.n_seeds == 3).all()
    assert dose.delta_sup.is_monotonic_increasing and dose.delta_sup.iloc[0] == pytest.approx(-0.595)
    assert dose.delta_sup_low.iloc[0] < dose.delta_sup.iloc[0] < dose.delta_sup_high.iloc[0]
    assert (dose.alignment_at_1_low >= 0).all() and (dose.alignment_at_1_low < dose.alignment_at_1).all()
    trends = aa.dial_trends(dial, n_resamples=200)
    rho = trends[(trends.statistic == "spearman_rho_configurations")].set_index("measure").estimate
    assert rho[["align_weight", "alignment_at_1", "log10_align_weight"]].tolist() == pytest.approx([1.0] * 3)
    over_models = trends[(trends.statistic == "spearman_rho")].set_index("measure").estimate
    assert 0.95 < over_models["align_weight"] < 0.999 and over_models["alignment_at_1"] == pytest.approx(1.0)
    per_decade = trends[(trends.measure == "log10_align_weight") & (trends.statistic == "ols_slope")].iloc[0]
    assert per_decade.estimate == pytest.approx(0.1) and per_decade.n_configurations == 4


def test_curves_over_training_count_each_model_once():
    rows = _rows(_monotone(seeds=(0, 1)), protocols=("trained", "frozen"), steps=(0, 500, 1000))
    curves = aa.training_curves(rows)
    one = curves[curves.configuration == "en translit+inv"]
    assert one.step.tolist() == [0, 500, 1000] and (one.n_seeds == 2).all()
    assert one.value.iloc[-1] == pytest.approx(0.405) and one.value.iloc[0] == 0.0
    assert aa.layer_profile(rows).query("kind == 'cka'").n_seeds.eq(2).all()
    assert aa.measure_label("cka_sentence_layer2") == "CKA (sentences), layer 2"


def test_the_figures_draw_what_they_should():
    import matplotlib

    matplotlib.use("Agg")
    from xlt_helpers.report import alignment_plots as ap

    rows = _rows(_monotone(), tasks=("pos", "ner"), steps=(0, 500))
    models = aa.measures_table(rows)
    assoc, _ = aa.association_tables(models, n_resamples=100)
    fig = ap.scatter_figure(models, "alignment_at_1", assoc)
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == ["pos", "ner"]
    assert "rho 1.000 [1.000, 1.000]" in fig.axes[0].get_title() and "7 configurations" in fig.axes[0].get_title()
    labels = {t.get_text() for t in fig.axes[0].texts}
    assert "en translit nonparallel half" in labels and len(labels) == 7       # the seven labelled points
    assert ap.scatter_figure(models.iloc[:0]) is None
    d_rows, configs = _dial_rows()
    fig = ap.dial_figure(aa.dose_response(aa.dial_models(aa.measures_table(d_rows, configs))))
    assert len(fig.axes) == 2 and fig.axes[0].get_xticklabels()[0].get_text() == "0 (mlm)"
    curves = aa.training_curves(rows)
    fig = ap.training_figure(curves)
    assert len(fig.axes[0].lines) == 7
    many = pd.concat([curves.assign(configuration=curves.configuration + f" #{k}") for k in range(2)])
    fig = ap.training_figure(many)  # 14 lines, more than matplotlib's 10 default colours: none drawn twice
    assert len({line.get_color() for line in fig.axes[0].lines}) == 14
    fig = ap.layer_figure(aa.layer_profile(rows))
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["en: linear CKA (words)"]
    matplotlib.pyplot.close("all")
