"""The studies' protocols: fine-tuning rows, ICL prompts within budget, multiple-choice scoring,
self-augmentation parsing, the SCAN / Symbol-evol experiment pieces, and both studies end to
end on a tiny model (1–2 tuning steps) with their report."""

import argparse
import json
import re

import pytest

from symtune.errors import SymtuneError
from symtune.naive import score_requests_naive
from symtune.studies import generalization as gen
from symtune.studies import two_stage
from symtune.studies.cli import add_study_parser
from symtune.studies.facts import TEMPLATES, render
from symtune.studies.generalization_data import GENERATORS
from symtune.studies.report import write_report
from symtune.studies.scan import SCAN_ACTIONS, interpret
from symtune.studies.symbol_evol import symbol_evol_rows
from symtune.tasks.task import Example
from symtune.train.data import encode, read_mixture


@pytest.fixture(scope="module")
def tiny_data():
    return gen.study_datasets(0, "tiny")


@pytest.fixture(scope="module")
def tiny_lm(tiny_model_dir):
    from symtune.models import load_model

    return load_model(str(tiny_model_dir))


# ---- generalization: data to rows ----------------------------------------------------------


def test_study_datasets_share_almost_no_entities_and_refuse_unknown_sizes(tiny_data):
    assert list(tiny_data) == list(GENERATORS)
    entities = [{t for fs in d.document_facts for f in fs for t in (f.subject, f.object)} for d in tiny_data.values()]
    for i in range(len(entities)):
        for j in range(i + 1, len(entities)):
            assert len(entities[i] & entities[j]) <= 2  # each dataset has its own seed
    with pytest.raises(SymtuneError, match="unknown study size .huge."):
        gen.study_datasets(0, "huge")


def test_document_pairs_split_sentences_as_asked():
    doc = "Grud are zept. Grud vorp telk.\nA: Telk are blick."
    assert gen.document_pairs([doc]) == [("\n", "Grud are zept."), ("\n", "Grud vorp telk."),
                                         ("\n", "A: Telk are blick.")]
    cumulative = gen.document_pairs([doc], "cumulative")
    assert cumulative[0] == ("\n", "Grud are zept.") and cumulative[1] == ("\nGrud are zept.", " Grud vorp telk.")
    assert gen.document_pairs([doc], "none") == [("\n", doc)]
    with pytest.raises(SymtuneError, match="unknown sentence splitting .random."):
        gen.document_pairs([doc], "random")


def test_training_rows_form_a_mixture_with_loss_on_the_sentences(tmp_path, tiny_data, tokenizer):
    data = tiny_data["semantic"]
    extra = gen.oracle_augmentations(data, "local")
    rows = gen.training_rows(data, extra, "independent", seed=0)
    assert sum(r["kind"] == "augmentation" for r in rows) == len(extra)
    gen.write_mixture(tmp_path / "mix", rows, 0, {})
    read, manifest = read_mixture(tmp_path / "mix")
    assert read == rows and manifest["n"] == len(rows) and manifest["tasks"]["semantic"]["count"] == len(rows)
    for (ids, n_prompt), row in zip(encode(tokenizer, [r["prompt"] for r in rows[:20]],
                                           [r["completion"] for r in rows[:20]]),
                                    rows[:20]):
        assert n_prompt >= 1 and tokenizer.decode(ids[n_prompt:]).strip() == row["completion"].strip()


def test_oracle_augmentations_are_true_and_reverse_the_documents(tiny_data):
    for data in tiny_data.values():
        for kind in ("local", "global"):
            sentences = gen.oracle_augmentations(data, kind)
            assert sentences and gen.augmentation_quality(data, sentences)["true"] == 1.0
        local = set(gen.oracle_augmentations(data, "local"))
        for facts in data.document_facts:
            for f in facts:
                if TEMPLATES[f.kind][1]:
                    reversal = render(f, TEMPLATES[f.kind][1][0])
                    assert reversal[0].upper() + reversal[1:] + "." in local
    semantic = tiny_data["semantic"]
    derived = {render(f, TEMPLATES[f.kind][0][0]).lower() for f in semantic.derived}
    assert derived <= {s.rstrip(".").lower() for s in gen.oracle_augmentations(semantic, "global")}
    quality = gen.augmentation_quality(semantic, ["Blorp are a type of zzz.", "Nonsense"])
    assert quality == {"sentences": 2, "true": 0.0, "true_new": 0.0}


# ---- ICL prompts and multiple-choice scoring -------------------------------------------


@pytest.mark.parametrize("budget", [60, 1000])
def test_icl_contexts_fit_the_budget_and_state_the_premises(tiny_data, tokenizer, budget):
    for data in tiny_data.values():
        items = [i for its in data.tests.values() for i in its][:15]
        contexts = gen.icl_contexts(data, items, tokenizer, budget, seed=0)
        assert contexts == gen.icl_contexts(data, items, tokenizer, budget, seed=0)
        for context, item in zip(contexts, items):
            assert context.startswith(gen.DOC_START) and context.endswith(item.context)
            documents = context[: -len(item.context)]
            assert len(tokenizer(documents).input_ids) <= budget
            if budget == 1000:  # room for the premises' documents: each premise is stated in the prompt
                answer = item.facts[item.answer]
                for premise in data.derived.get(answer, (answer,)):
                    assert any(d in documents
                               for d, facts in zip(data.documents, data.document_facts) if premise in facts)


def test_select_documents_takes_the_needed_first_then_fills():
    rng = __import__("random").Random(0)
    chosen = gen.select_documents([3, 1], [5, 5, 5, 5, 50], budget=16, rng=rng)
    assert {3, 1} <= set(chosen) and 4 not in chosen and len(chosen) == 3


def test_mc_predictions_pick_the_option_with_the_highest_log_prob(tiny_lm):
    model, tokenizer = tiny_lm
    items = [i for its in gen.study_datasets(1, "tiny")["semantic"].tests.values() for i in its][:6]
    contexts = [gen.DOC_START + i.context for i in items]
    predicted = gen.mc_predictions(model, tokenizer, contexts, items)
    reference = score_requests_naive(model, tokenizer, [(c, i.options) for c, i in zip(contexts, items)])
    assert predicted == [max(range(len(s.logprobs)), key=s.logprobs.__getitem__) for s in reference]


# ---- self-augmentation -----------------------------------------------------------------


def test_parse_augmentations_keeps_whole_sentences_without_labels():
    text = (" Femp are a kind of glon.\nReversal: Glon include femp.\n- 1. Zept things\nInferences:\n"
            "All yomp are glon.\nRephrasing: Femp are a kind of glon.")
    assert gen.parse_augmentations(text) == ["Femp are a kind of glon.", "Glon include femp.", "All yomp are glon."]
    assert gen.parse_augmentations("") == [] and gen.parse_augmentations("Rephrasing: so") == []


def test_self_augmentation_prompts(tiny_data, tokenizer):
    data = tiny_data["semantic"]
    local = gen.self_augmentation_prompts(data, "local", tokenizer, 100, seed=0)
    assert len(local) == len(gen.statements_of(data)) and all(p.endswith("Rephrasing:") for p in local)
    assert not any(s.startswith(("- ", "A: ")) for s in gen.statements_of(data))
    glob = gen.self_augmentation_prompts(data, "global", tokenizer, 100, seed=0)
    assert len(glob) == len({tuple(f) for f in data.document_facts}) and all(p.endswith("Inferences:\n") for p in glob)


def test_self_augmentations_run_on_a_model(tiny_lm):
    model, tokenizer = tiny_lm
    data = gen.study_datasets(0, "tiny")["syllogisms"]
    data.documents, data.document_facts = data.documents[:2], data.document_facts[:2]
    for kind in ("local", "global"):
        sentences = gen.self_augmentations(model, tokenizer, data, kind, budget=64, seed=0)
        assert all(isinstance(s, str) and s.endswith(".") for s in sentences)


# ---- Symbol-evol and the two-stage experiment ------------------------------------------


def test_symbol_evol_rows_take_strings_from_a_pool_and_exemplars_from_a_list():
    train = [Example(c, " ".join(interpret(c))) for c in ("walk", "run left", "look twice", "walk and run")]
    queries = [Example("jump left", "I_TURN_LEFT I_JUMP")]
    pool = ["femp", "glon", "yomp", "telk", "zept", "rony", "abme"]
    rows = symbol_evol_rows(queries, SCAN_ACTIONS, task="t", n=3, seed=0, k=2, exemplars=train, pool=pool)
    for row in rows:
        assert set(row["mapping"].values()) <= set(pool)
        shots = re.findall(r"Input: (.*)\n", row["prompt"])
        assert shots[-1] == "jump left" and set(shots[:-1]) <= {e.text for e in train}
        assert row["completion"] == f" {row['mapping']['I_TURN_LEFT']} {row['mapping']['I_JUMP']}"
    with pytest.raises(SymtuneError, match="a pool of 3 strings cannot name 6 symbols"):
        symbol_evol_rows(queries, SCAN_ACTIONS, task="t", n=1, seed=0, pool=pool[:3])
    with pytest.raises(SymtuneError, match="Symbol-evol needs k=5 exemplars besides the query, got 4"):
        symbol_evol_rows(queries, SCAN_ACTIONS, task="t", n=1, seed=0, k=5, exemplars=train)


def test_scan_data_holds_out_its_test_commands():
    cfg = two_stage.TwoStageConfig(max_actions=6, n_eval=20)
    training, tests = two_stage.scan_data(cfg, seed=0)
    trained = {e.text for e in training}
    assert "jump" in trained and not any("jump" in e.text.split() for e in training if e.text != "jump")
    assert not trained & {e.text for e in tests["iid"]} and tests["iid"] == tests["unseen_symbols"]
    assert all("jump" in e.text.split() for e in tests["add_jump"]) and len(tests["add_jump"]) == 20
    assert all(len(interpret(e.text)) <= 6 for split in (training, *tests.values()) for e in split)
    prompts = two_stage.scan_prompts(cfg, 0, training, tests)
    assert all(re.fullmatch(r"[A-Za-z0-9]{6}", s) for r in prompts["iid"] for s in r["mapping"].values())
    assert all(re.fullmatch(r"[a-z]{4,5}", s) for r in prompts["unseen_symbols"] for s in r["mapping"].values())


def test_scan_scores_compare_whole_outputs_and_positions(monkeypatch):
    import symtune.generation

    rows = [{"prompt": "p1", "completion": " ab cd"}, {"prompt": "p2", "completion": " ab"},
            {"prompt": "p3", "completion": " x"}, {"prompt": "p4", "completion": " a b c d"}]
    outputs = [" ab  cd", " ab cd", "", " a c c"]
    monkeypatch.setattr(symtune.generation, "generate_until", lambda model, tok, prompts, **kw: outputs)
    tokenizer = lambda text: argparse.Namespace(input_ids=text.split())  # noqa: E731
    scores = two_stage.scan_scores(None, tokenizer, rows, token_budget=100)
    assert scores == {"exact": [1, 0, 0, 0], "symbols": [1.0, 0.5, 0.0, 0.5], "outputs": outputs}


def test_schedules_split_the_same_steps():
    cfg = two_stage.TwoStageConfig(steps=10, injection_share=0.3, ratio=(1.0, 2.0))
    injection, one, two = (two_stage.schedule_stages(cfg, s, "sym", "nat") for s in two_stage.SCHEDULES)
    assert injection == [{"data": "sym", "steps": 10}]
    assert one == [{"data": ["sym", "nat"], "ratio": [1.0, 2.0], "steps": 10}]
    assert two == [{"data": "sym", "steps": 3}, {"data": ["sym", "nat"], "ratio": [1.0, 2.0], "steps": 7}]


# ---- end to end ------------------------------------------------------------------------


def test_both_studies_run_end_to_end_resume_and_report(tmp_path, tiny_model_dir):
    overrides = ["batch_size=2", "max_seq_len=256"]
    gcfg = gen.GeneralizationConfig(model=str(tiny_model_dir), size="tiny", seeds=1, steps=1, max_items=2,
                                    icl_tokens=64, augmenters=("oracle",), overrides=overrides)
    results = gen.run_generalization(gcfg, tmp_path / "gen", "symtune study generalization")
    assert list(results["protocols"]) == ["pretrained", "icl", "ft", "ft_local_oracle", "ft_global_oracle"]
    cell = results["accuracy"]["reversals"]["reversal"]
    assert set(cell) == set(results["protocols"]) and all(0 <= c["mean"] <= 1 for c in cell.values())
    assert results["chance"]["reversals"]["reversal"] == 0.5 and results["items"]["semantic"]["holdout"] == 2
    assert not list((tmp_path / "gen/seed0/ft/model").glob("*.safetensors"))  # weights dropped once scored
    log = tmp_path / "gen/seed0/ft/model/train_log.jsonl"
    stamp = log.stat().st_mtime_ns
    again = gen.run_generalization(gcfg, tmp_path / "gen", "again")
    assert again["accuracy"] == json.loads(json.dumps(results["accuracy"])) and log.stat().st_mtime_ns == stamp

    tcfg = two_stage.TwoStageConfig(model=str(tiny_model_dir), seeds=1, steps=2, n_eval=2, forget_n=2,
                                    max_actions=2, overrides=overrides)
    two = two_stage.run_two_stage(tcfg, tmp_path / "two", "symtune study two-stage")
    assert two["models"] == ["pretrained", *two_stage.SCHEDULES]
    assert set(two["scan"]) == set(two_stage.SCAN_METRICS) and set(two["icl"]["pretrained"]) == {"natural", "symbols"}
    assert set(two["scan"]["symbols"]["two_stage"]) == set(two_stage.SCAN_SPLITS)
    stages = [json.loads(line)["stage"] for line in (tmp_path / "two/seed0/two_stage/model/train_log.jsonl").open()]
    assert stages == [0, 1] and len(two["losses"][0]["two_stage"]) == 2

    doc = write_report([str(tmp_path / "gen/results.json"), str(tmp_path / "two/results.json")],
                       tmp_path / "docs/results.md")
    text = doc.read_text()
    assert "`symtune study generalization`" in text and "`symtune study two-stage`" in text
    assert (tmp_path / "docs/results/generalization.png").stat().st_size > 0 and "](results/two_stage.png)" in text
    assert "symbol accuracy of the greedy output" in text
    assert re.search(r"\| \*{0,2}[-+]\d+\.\d \[[-+]\d+\.\d, [-+]\d+\.\d\]\*{0,2} n=\d+ \|", text)  # intervals
    with pytest.raises(SymtuneError, match="not a results file of `symtune study`"):
        write_report([str(tmp_path / "gen/seed0/pretrained.json")], tmp_path / "bad.md")
    damaged = json.loads((tmp_path / "two/results.json").read_text())
    damaged["scan"] = damaged["scan"]["exact"]  # one level short
    (tmp_path / "damaged.json").write_text(json.dumps(damaged))
    with pytest.raises(SymtuneError, match=r"damaged\.json: scan\.\S+ must be a mapping"):
        write_report([str(tmp_path / "damaged.json")], tmp_path / "damaged.md")


def test_cli_builds_configs_from_flags_then_quick_then_defaults(monkeypatch):
    parser = argparse.ArgumentParser()
    add_study_parser(parser.add_subparsers(dest="command"))
    seen = {}
    monkeypatch.setattr(gen, "run_generalization", lambda cfg, out, command: seen.update(cfg=cfg, out=out))
    monkeypatch.setattr(two_stage, "run_two_stage", lambda cfg, out, command: seen.update(cfg=cfg, out=out))
    args = parser.parse_args(["study", "generalization", "--quick", "--steps", "7", "--set", "lora=true"])
    args.func(args)
    cfg = seen["cfg"]
    assert (cfg.steps, cfg.seeds, cfg.augmenters, cfg.overrides) == (7, 1, ("oracle",), ["lora=true"])
    assert cfg.size == gen.GeneralizationConfig().size and seen["out"] == "runs/study-generalization"
    args = parser.parse_args(["study", "two-stage", "--ratio", "1:3", "--out", "x"])
    args.func(args)
    assert (seen["cfg"].ratio, seen["cfg"].seeds, seen["out"]) == ((1.0, 3.0), 3, "x")
    args = parser.parse_args(["study", "two-stage", "--ratio", "1:x"])
    with pytest.raises(SymtuneError, match="a weight must be a number, got 'x'"):
        args.func(args)


def test_studies_refuse_bad_configs_before_loading_a_model():
    with pytest.raises(SymtuneError, match="augmenters must be among oracle, self"):
        gen.run_generalization(gen.GeneralizationConfig(augmenters=("gemini",)), "unused")
    with pytest.raises(SymtuneError, match="unknown sentence splitting .paragraphs."):
        gen.run_generalization(gen.GeneralizationConfig(splitting="paragraphs"), "unused")
    with pytest.raises(SymtuneError, match="injection_share must leave both stages at least one of the 2 steps"):
        two_stage.run_two_stage(two_stage.TwoStageConfig(steps=2, injection_share=0.1), "unused")
    with pytest.raises(SymtuneError, match="ratio is two non-negative weights .symbolic, natural., got .0, 0."):
        two_stage.run_two_stage(two_stage.TwoStageConfig(ratio=(0, 0)), "unused")


class Scored(Exception):
    """Raised by a stand-in scorer with the model it was handed."""

    def __init__(self, model):
        super().__init__("the scorer was reached")
        self.model = model


def on_an_accelerator(monkeypatch):
    """Pretend this process's device is an accelerator with native bf16 (the meta device stands in)."""
    import types

    import torch

    import symtune.batching
    import symtune.models

    monkeypatch.setattr(symtune.batching, "process_state", lambda: types.SimpleNamespace(device=torch.device("meta")))
    monkeypatch.setattr(symtune.models, "bf16_native", lambda device: True)


def raise_scored(model, *args, **kwargs):
    raise Scored(model)


def test_the_studies_score_on_the_accelerator_in_bf16(tiny_model_dir, tmp_path, monkeypatch):
    import torch

    on_an_accelerator(monkeypatch)
    monkeypatch.setattr(two_stage, "scan_scores", raise_scored)
    with pytest.raises(Scored, match="the scorer was reached") as two:
        two_stage.evaluate_model(str(tiny_model_dir), two_stage.TwoStageConfig(), {"iid": []}, [], 0, tmp_path)
    monkeypatch.setattr(gen, "score_protocol", raise_scored)
    with pytest.raises(Scored, match="the scorer was reached") as generalization:
        gen.run_seed(gen.GeneralizationConfig(model=str(tiny_model_dir)), 0, tmp_path, gen.Clock())
    for scored in (two, generalization):
        assert (scored.value.model.device.type, scored.value.model.dtype) == ("meta", torch.bfloat16)
