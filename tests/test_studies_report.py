"""The studies' report: each contrast between protocols is a paired difference with its 95%
interval and n, from the per-item correctness a results file keeps; a results file without it
says so in the table instead of printing a bare difference."""

import json
import re
import statistics

import pytest

from symtune.errors import SymtuneError
from symtune.studies import generalization as gen
from symtune.studies.report import NO_INTERVAL, contrast, paired_items, write_report

# per protocol and dataset: split -> 0/1 per test item (the same in both seeds)
SCORES = {
    "pretrained": {"reversals": {"trained": [1, 0, 1, 0], "reversal": [1, 0, 1, 0]},
                   "syllogisms": {"rephrasing": [0, 1], "syllogism": [0, 1, 0, 1]}},
    "icl": {"reversals": {"trained": [1, 1, 1, 1], "reversal": [1, 1, 1, 1]},
            "syllogisms": {"rephrasing": [1, 1], "syllogism": [1, 1, 1, 1]}},
    "ft": {"reversals": {"trained": [1, 1, 1, 1], "reversal": [0, 1, 0, 1]},
           "syllogisms": {"rephrasing": [1, 1], "syllogism": [1, 0, 1, 0]}},
}


def synthetic_results(seeds: int = 2) -> dict:
    """A generalization results file as run_generalization writes it, its accuracies from SCORES."""
    correct = [json.loads(json.dumps(SCORES)) for _ in range(seeds)]
    accuracy = {name: {split: {p: {"mean": sum(s) / len(s), "stderr": 0.0} for p in SCORES
                               for s in [SCORES[p][name][split]]} for split in splits}
                for name, splits in SCORES["ft"].items()}
    items = {name: {split: len(v) for split, v in splits.items()} for name, splits in SCORES["ft"].items()}
    return {
        "study": "generalization", "command": "symtune study generalization", "seconds": 60.0,
        "config": {"model": "tiny", "size": "tiny", "seeds": seeds, "steps": 1, "recipe": "cpu-small",
                   "overrides": [], "splitting": "independent", "icl_tokens": 64, "max_items": 4},
        "protocols": {"pretrained": "pretrained", "icl": "ICL", "ft": "FT"}, "accuracy": accuracy, "items": items,
        "chance": {name: {split: 0.5 for split in splits} for name, splits in items.items()},
        "augmentation": [{"local_oracle": {"reversals": {"sentences": 3, "true": 1.0, "true_new": 0.5}}}] * seeds,
        "runs": [{"ft": {"rows": 10, "steps": 1, "final_loss": 2.0}}] * seeds, "correct": correct,
    }


def contrast_rows(text: str) -> list[str]:
    section = text.split("### Contrasts (computed)")[1].split("###")[0]
    return [line for line in section.splitlines() if line.startswith("| trained") or line.startswith("| reversal")]


def test_paired_items_pair_each_test_item_with_itself_under_the_base_protocol():
    cells = paired_items(synthetic_results()["correct"], "icl", "ft", ("reversal", "syllogism"))
    assert cells == {"reversals/reversal": {0: [1, 0, 1, 0], 1: [1, 0, 1, 0]},
                     "syllogisms/syllogism": {0: [0, 1, 0, 1], 1: [0, 1, 0, 1]}}


def test_a_contrast_carries_its_interval_and_n_bold_only_where_it_excludes_zero():
    results = synthetic_results()
    held_out, trained = ("reversal", "syllogism", "holdout"), ("trained", "rephrasing")
    assert contrast(results, "icl", "ft", held_out) == "**+50.0 [+25.0, +75.0]** n=16"  # a fixed bootstrap seed
    assert contrast(results, "pretrained", "ft", trained) == "**-50.0 [-81.2, -18.8]** n=12"
    assert contrast(results, "pretrained", "ft", held_out) == "+0.0 [-50.0, +50.0] n=16"  # per item +1 or -1
    assert contrast(results, "icl", "ft", trained) == "+0.0 [+0.0, +0.0] n=12"  # no item differs: not bold
    # the point estimate is the old one: the mean over (dataset, split) of the accuracy difference
    old = statistics.fmean(results["accuracy"][name][split]["icl"]["mean"] - results["accuracy"][name][split]["ft"]
                           ["mean"] for name, split in (("reversals", "reversal"), ("syllogisms", "syllogism")))
    assert contrast(results, "icl", "ft", held_out).startswith(f"**{100 * old:+.1f} [")
    assert contrast(results, "icl", "ft", ("no such split",)) == "–"


def test_the_report_states_the_method_and_prints_intervals(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(synthetic_results()))
    text = write_report([str(path)], tmp_path / "docs/studies.md").read_text()
    assert "Paired differences and their intervals" in text and "**Bold**: the interval excludes 0." in text
    trained, held_out = contrast_rows(text)
    assert re.search(r"\| \*\*\+50\.0 \[\+\d+\.\d, \+\d+\.\d\]\*\* n=16 \|$", held_out)
    assert all(re.search(r"\[[-+]\d+\.\d, [-+]\d+\.\d\]\*{0,2} n=\d+", cell)
               for row in (trained, held_out) for cell in row.split("|")[2:-1])


def test_a_results_file_without_per_item_records_says_so_instead_of_a_bare_difference(tmp_path):
    results = synthetic_results()
    del results["correct"]  # results files written before per-item correctness was recorded
    path = tmp_path / "old.json"
    path.write_text(json.dumps(results))
    text = write_report([str(path)], tmp_path / "docs/studies.md").read_text()
    rows = contrast_rows(text)
    assert len(rows) == 2 and all(cell.strip() == NO_INTERVAL for row in rows for cell in row.split("|")[2:-1])
    assert NO_INTERVAL == "no interval: re-run the study"


def test_per_item_records_that_disagree_are_refused_with_the_file_named(tmp_path):
    short = synthetic_results()
    short["correct"][1]["icl"]["reversals"]["reversal"].pop()
    (tmp_path / "short.json").write_text(json.dumps(short))
    with pytest.raises(SymtuneError, match=r"short\.json: inconsistent results file .*reversals/reversal"):
        write_report([str(tmp_path / "short.json")], tmp_path / "short.md")
    typed = synthetic_results()
    typed["correct"][0]["ft"]["reversals"]["trained"] = "1101"
    (tmp_path / "typed.json").write_text(json.dumps(typed))
    with pytest.raises(SymtuneError, match=r"typed\.json: correct\[0\]\.ft\.reversals\.trained must be a list"):
        write_report([str(tmp_path / "typed.json")], tmp_path / "typed.md")


def test_the_generalization_study_records_each_seeds_per_item_correctness(tmp_path, monkeypatch):
    def run_seed(cfg, seed, out, clock):
        scores = {p: {"reversals": {"reversal": [seed, 1 - seed]}} for p in gen.protocols(cfg)}
        return {"scores": scores, "augmentation": {}, "runs": {}, "chance": {"reversals": {"reversal": 0.5}},
                "items": {"reversals": {"reversal": 2}}}

    monkeypatch.setattr(gen, "run_seed", run_seed)
    monkeypatch.setattr(gen, "versions", dict)
    monkeypatch.setattr(gen, "scoring_record", dict)
    cfg = gen.GeneralizationConfig(seeds=2, augmenters=("oracle",))
    results = gen.run_generalization(cfg, tmp_path / "gen")
    written = json.loads((tmp_path / "gen/results.json").read_text())
    assert written["correct"] == [{p: {"reversals": {"reversal": [s, 1 - s]}} for p in gen.protocols(cfg)}
                                  for s in (0, 1)]
    assert results["accuracy"]["reversals"]["reversal"]["ft"]["per_seed"] == [0.5, 0.5]  # computed as before
