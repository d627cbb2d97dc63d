"""Invariants of the study data generators: nonsense words, the Lampinen et al. datasets and
their oracle augmenters, SCAN and Symbol-evol."""

import os
import re
import subprocess
import sys

import pytest
from wordfreq import zipf_frequency

from symtune.errors import SymtuneError
from symtune.studies.facts import REPHRASINGS, TEMPLATES, Fact, derive, follows, global_augment, local_augment, render
from symtune.studies.generalization_data import GENERATORS, split_sentences
from symtune.studies.nonsense import nonsense_words
from symtune.studies.scan import SCAN_ACTIONS, all_commands, interpret, scan_split, scan_task
from symtune.studies.symbol_evol import rename_symbols, symbol_evol_rows
from symtune.tasks.task import Example

F = Fact


@pytest.fixture(scope="module")
def studies():
    return {name: generate(seed=0) for name, generate in GENERATORS.items()}


def stated_facts(data):
    return {f for facts in data.document_facts for f in facts}


def true_facts(data):
    return stated_facts(data) | set(data.derived)


# ---- nonsense words ----------------------------------------------------------------------


def test_nonsense_words_are_short_unknown_and_unique():
    words = nonsense_words(400, seed=3)
    assert len(set(words)) == 400
    assert all(re.fullmatch(r"[a-z]{4,5}", w) for w in words)
    assert all(zipf_frequency(w, "en") == 0 for w in words)


def test_nonsense_words_are_deterministic_per_seed():
    assert nonsense_words(50, seed=1) == nonsense_words(50, seed=1) == nonsense_words(120, seed=1)[:50]
    assert nonsense_words(50, seed=1) != nonsense_words(50, seed=2)


# ---- facts, inference and augmentation ---------------------------------------------------


def test_follows_uses_boolean_semantics():
    barbara = [F("m", "all", "p"), F("s", "all", "m")]
    assert follows(barbara, F("s", "all", "p"))
    assert not follows(barbara, F("s", "some", "p"))  # no existential import
    assert not follows(barbara, F("p", "all", "s"))
    celarent = [F("m", "no", "p"), F("s", "all", "m")]
    assert follows(celarent, F("s", "no", "p")) and follows(celarent, F("p", "no", "s"))
    undistributed_middle = [F("p", "all", "m"), F("s", "all", "m")]
    assert not any(follows(undistributed_middle, F(a, q, b)) for q in ("all", "some", "no")
                   for a, b in (("s", "p"), ("p", "s")))


def test_test_templates_end_with_the_answer_slot():
    for kind in ("isa", "has", "do", "is"):
        forwards, reverses = TEMPLATES[kind]
        assert all(t.endswith("{o}") for t in forwards) and all(t.endswith("{s}") for t in reverses)
    assert all(t.endswith("{o}") for t in REPHRASINGS.values())
    assert not set(REPHRASINGS.values()) & {t for pair in TEMPLATES.values() for ts in pair for t in ts}


HIERARCHY = [F("grud", "isa", "abme"), F("abme", "isa", "rony"), F("rony", "has", "zept"),
             F("abme", "do:vorp", "telk"), F("telk", "has", "blick")]


def test_derive_inherits_along_the_hierarchy_with_premises():
    derived = derive(HIERARCHY)
    assert derived == {
        F("grud", "do:vorp", "telk"): (HIERARCHY[0], HIERARCHY[3]),
        F("grud", "isa", "rony"): (HIERARCHY[0], HIERARCHY[1]),
        F("grud", "has", "zept"): (HIERARCHY[0], HIERARCHY[1], HIERARCHY[2]),
        F("abme", "has", "zept"): (HIERARCHY[1], HIERARCHY[2]),
    }
    assert derive([F("x", "some", "y"), F("y", "no", "x")]) == {}  # two facts on one pair: no syllogism


def test_local_augment_gives_rephrasings_and_reversals():
    sentences = local_augment(F("femp", "more:dangerous", "glon"))
    assert "Femp are more dangerous than glon." in sentences
    assert "Glon are less dangerous than femp." in sentences
    assert local_augment(F("glon", "all", "yomp")) == ["All glon are yomp.", "Every glon is yomp."]
    assert "Telk are vorped by abme." in local_augment(HIERARCHY[3])


def test_global_augment_links_a_document_to_the_rest():
    inferences = global_augment([HIERARCHY[0]], derive(HIERARCHY))
    assert set(inferences) == {
        "Abme include grud.", "Grud vorp telk.", "Grud are a type of rony.", "Grud are zept."}
    assert set(global_augment([HIERARCHY[2]], derive(HIERARCHY))) == {
        "Zept things include rony.", "Grud are zept.", "Abme are zept."}
    assert global_augment([HIERARCHY[4]], derive(HIERARCHY)) == ["Blick things include telk."]


def test_split_sentences_independent_and_cumulative():
    doc = "Grud\n\nGrud are zept. Did you know that grud vorp telk?\nQ: What?\nA: Telk are blick."
    independent = split_sentences(doc)
    assert [s for _, s in independent] == [
        "Grud", "Grud are zept.", "Did you know that grud vorp telk?", "Q: What?", "A: Telk are blick."]
    assert all(context == "" for context, _ in independent)
    cumulative = split_sentences(doc, cumulative=True)
    assert [s for _, s in cumulative] == [s for _, s in independent]
    assert cumulative[2][0] == "Grud\n\nGrud are zept."
    assert all(doc.startswith(context) for context, _ in cumulative)


# ---- the four datasets -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generators_are_deterministic_per_seed(name):
    assert GENERATORS[name](seed=1) == GENERATORS[name](seed=1)
    assert GENERATORS[name](seed=1).documents != GENERATORS[name](seed=2).documents


def test_generators_do_not_depend_on_the_hash_seed():
    code = ("import hashlib; from symtune.studies.generalization_data import GENERATORS; "
            "print(hashlib.sha256(repr([g(seed=0) for g in GENERATORS.values()]).encode()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(digests) == 1


def test_dataset_sizes_match_the_paper_setup(studies):
    reversals = studies["reversals"]
    assert len(reversals.documents) == 1000 and len(reversals.tests["reversal"]) == 100
    assert reversals.document_facts[:10] != reversals.document_facts[:1] * 10  # documents are shuffled
    assert len(studies["syllogisms"].tests["syllogism"]) == 69
    assert {len(i.options) for i in studies["syllogisms"].tests["syllogism"]} <= {5, 6}
    semantic = studies["semantic"]
    assert set(semantic.tests) == {"rephrasing", "reversal", "syllogism", "holdout"}
    assert all(len(i.options) == 4 for items in semantic.tests.values() for i in items)
    assert all(len(items) >= 50 for items in semantic.tests.values())


def test_reversal_answers_are_balanced_between_more_and_less(studies):
    for items in studies["reversals"].tests.values():  # a bias for "more" or "less" scores chance
        assert sum(" more " in item.options[item.answer] for item in items) == len(items) // 2


def test_documents_state_their_facts(studies):
    for data in studies.values():
        for doc, facts in zip(data.documents, data.document_facts):
            for fact in facts:
                templates = TEMPLATES[fact.kind][0] + TEMPLATES[fact.kind][1]
                assert any(render(fact, t).lower() in doc.lower() for t in templates), (doc, fact)


def test_options_state_their_facts_in_the_split_wording(studies):
    for data in studies.values():
        for split, items in data.tests.items():
            for item in items:
                for option, fact in zip(item.options, item.facts):
                    forwards, reverses = TEMPLATES[fact.kind]
                    if data.name in ("reversals", "syllogisms"):  # whole statements after a lead-in
                        text, templates = option, forwards + reverses
                    else:  # the stem fixes the wording, the option is the answer word
                        text = item.context + option
                        templates = (reverses if data.name == "people" or split == "reversal"
                                     else [REPHRASINGS[fact.kind]] if split == "rephrasing" else forwards)
                    assert text.strip().rstrip(".").lower() in {render(fact, t).lower() for t in templates}


def test_test_answers_are_derivable_from_training_facts(studies):
    for data in studies.values():
        stated, derived = stated_facts(data), data.derived
        for split, items in data.tests.items():
            for item in items:
                answer = item.facts[item.answer]
                if split in ("syllogism", "holdout"):
                    assert answer in derived and answer not in stated
                else:
                    assert answer in stated


def test_splits_are_disjoint(studies):
    for data in studies.values():
        seen = {}
        for split, items in data.tests.items():
            for item in items:
                key = (item.context, item.options[item.answer])
                assert seen.setdefault(key, split) == split


def test_only_trained_test_sentences_appear_in_training(studies):
    for data in studies.values():
        training = "\n".join(data.documents).lower()
        for split, items in data.tests.items():
            for item in items:
                text = item.options[item.answer]
                if data.name not in ("reversals", "syllogisms"):  # the stem is part of the statement
                    text = item.context + text
                pattern = re.escape(text.strip().lower().rstrip(".")) + r"\b"
                assert bool(re.search(pattern, training)) == (split == "trained"), text


def test_distractors_are_false_here_and_true_elsewhere(studies):
    for data in studies.values():
        true = true_facts(data)
        for split, items in data.tests.items():
            answer_is_subject = data.name == "people" or split == "reversal"
            for item in items:
                for i, fact in enumerate(item.facts):
                    assert (fact in true) == (i == item.answer)
                    if i == item.answer or data.name not in ("semantic", "people"):
                        continue
                    if answer_is_subject:  # the distractor entity holds the relation to something else
                        assert any(g.subject == fact.subject and g.relation == fact.relation for g in true)
                    else:  # the distractor value holds for some other entity
                        assert any(g.object == fact.object and g.relation == fact.relation for g in true)


def test_syllogism_items_have_exactly_one_valid_option(studies):
    data = studies["syllogisms"]
    premises = {frozenset((a.subject, a.object, b.subject, b.object)): [a, b] for a, b in data.document_facts}
    for item in data.tests["syllogism"]:
        terms = frozenset(t for f in item.facts for t in (f.subject, f.object))
        (pair,) = [p for key, p in premises.items() if terms <= key]
        assert [follows(pair, f) for f in item.facts] == [i == item.answer for i in range(len(item.facts))]


def test_holdout_categories_are_trained_only_through_their_parent(studies):
    data = studies["semantic"]
    stated = stated_facts(data)
    holdout = {item.facts[item.answer].subject for item in data.tests["holdout"]}
    assert len(holdout) >= 5
    parent_link = {}
    for h in holdout:
        (parent_link[h],) = {f for f in stated if h in (f.subject, f.object)}
        assert parent_link[h].kind == "isa" and parent_link[h].subject == h
    for item in data.tests["holdout"]:
        answer = item.facts[item.answer]
        premises = data.derived[answer]
        assert answer not in stated and premises[0] == parent_link[answer.subject]
        assert all(f.subject != answer.subject for f in premises[1:])  # the rest is about ancestors
    assert not {item.facts[item.answer].subject for item in data.tests["syllogism"]} & holdout


def test_people_reversal_names_never_follow_their_description(studies):
    data = studies["people"]
    training = data.documents
    for split, items in data.tests.items():
        for item in items:
            person = item.facts[item.answer]
            seen_reversed = any(person.object in d and d.index(person.object) < d.index(person.subject)
                                for d in training if person.subject in d)
            assert seen_reversed == (split == "trained")


# ---- SCAN --------------------------------------------------------------------------------

# From Lake & Baroni's README and add_prim_split/tasks_test_addprim_turn_left.txt.
KNOWN = {
    "jump opposite left after walk around left":
        " ".join(["I_TURN_LEFT I_WALK"] * 4 + ["I_TURN_LEFT I_TURN_LEFT I_JUMP"]),
    "jump around left twice": " ".join(["I_TURN_LEFT I_JUMP"] * 8),
    "turn left twice and look opposite left thrice":
        " ".join(["I_TURN_LEFT I_TURN_LEFT"] + ["I_TURN_LEFT I_TURN_LEFT I_LOOK"] * 3),
    "run opposite right twice after turn left twice":
        "I_TURN_LEFT I_TURN_LEFT I_TURN_RIGHT I_TURN_RIGHT I_RUN I_TURN_RIGHT I_TURN_RIGHT I_RUN",
    "turn around right and turn left twice":
        "I_TURN_RIGHT I_TURN_RIGHT I_TURN_RIGHT I_TURN_RIGHT I_TURN_LEFT I_TURN_LEFT",
    "walk left after turn left": "I_TURN_LEFT I_TURN_LEFT I_WALK",
    "jump": "I_JUMP",
}


def test_scan_grammar_has_the_known_size():
    commands = all_commands()
    assert len(commands) == len(set(commands)) == 20910
    assert max(len(interpret(c)) for c in commands) == 48


@pytest.mark.parametrize("command", sorted(KNOWN))
def test_scan_interpretation_matches_the_dataset(command):
    assert " ".join(interpret(command)) == KNOWN[command]


@pytest.mark.parametrize("bad", ["", "jump jump", "walk and", "walk twice twice", "fly",
                                 "walk left and run and jump", "walk opposite around left"])
def test_scan_rejects_malformed_commands(bad):
    with pytest.raises(SymtuneError, match="not a SCAN command"):
        interpret(bad)


@pytest.mark.parametrize("split, sizes", [
    ("simple", (16728, 4182)), ("add_jump", (14670, 7706)), ("length", (16990, 3920))])
def test_scan_splits_have_the_standard_sizes_and_are_disjoint(split, sizes):
    train, test = scan_split(split, seed=0)
    assert (len(train), len(test)) == sizes
    assert not set(train) & set(test) and set(train) | set(test) == set(all_commands())
    assert scan_split(split, seed=0) == (train, test)


def test_scan_add_jump_and_length_properties():
    train, test = scan_split("add_jump")
    assert all("jump" not in c.split() for c in train if c != "jump")
    assert train.count("jump") == 1467  # 10% of train, as the original file
    assert all("jump" in c.split() for c in test)
    train, test = scan_split("length")
    assert max(len(interpret(c)) for c in train) == 22 < min(len(interpret(c)) for c in test)
    assert scan_split("simple", seed=0) != scan_split("simple", seed=1)
    with pytest.raises(SymtuneError, match="unknown SCAN split 'mcd1'"):
        scan_split("mcd1")


def test_scan_task_is_a_valid_generation_task():
    task = scan_task("length").validate()
    assert task.is_generation and task.name == "scan_length"
    assert all(ex.label == " ".join(interpret(ex.text)) for ex in task.test[:100])


# ---- Symbol-evol -------------------------------------------------------------------------


def test_symbol_evol_rows_use_exactly_the_defined_strings():
    examples = scan_task("simple").train[:300]
    rows = symbol_evol_rows(examples, SCAN_ACTIONS, task="scan_simple", n=30, seed=0, k=2)
    assert rows == symbol_evol_rows(examples, SCAN_ACTIONS, task="scan_simple", n=30, seed=0, k=2)
    for row in rows:
        assert set(row) == {"id", "task", "kind", "format", "seed", "k", "prompt", "completion", "labels",
                            "mapping"}
        assert row["kind"] == "symbol_evol" and row["prompt"].endswith("\nOutput:")
        assert row["completion"].startswith(" ")
        mapping = row["mapping"]
        assert set(mapping) == set(SCAN_ACTIONS) and len(set(mapping.values())) == 6
        assert all(re.fullmatch(r"[A-Za-z0-9]{6}", s) for s in mapping.values())
        for symbol, new in mapping.items():
            assert row["prompt"].count(f"{new} means {SCAN_ACTIONS[symbol]}\n") == 1
        assert "I_" not in row["prompt"] + row["completion"]
        shots = re.findall(r"Input: (.*)\nOutput:(.*)", row["prompt"] + row["completion"])
        assert len(shots) == 3
        for command, output in shots:
            assert output == " " + " ".join(mapping[a] for a in interpret(command))
    assert len({tuple(r["mapping"].values()) for r in rows}) == 30  # fresh strings in every prompt
    assert len({r["prompt"].split("\n")[1].split(" means ")[1] for r in rows}) > 1  # definitions shuffled
    assert rows != symbol_evol_rows(examples, SCAN_ACTIONS, task="scan_simple", n=30, seed=1, k=2)


def test_symbol_evol_renames_whole_symbols_of_any_vocabulary():
    mapping = {"<=": "Qa1", "AND": "zZ9"}
    assert rename_symbols("x <= 3 AND ANDROID(y)", mapping) == "x Qa1 3 zZ9 ANDROID(y)"
    examples = [Example("walk", "I_WALK"), Example("jump", "I_JUMP")]
    with pytest.raises(SymtuneError, match="Symbol-evol needs a declared output vocabulary"):
        symbol_evol_rows(examples, {}, task="t", n=1, seed=0)
    with pytest.raises(SymtuneError, match="Symbol-evol needs k=2 exemplars besides the query, got 1"):
        symbol_evol_rows(examples, SCAN_ACTIONS, task="t", n=1, seed=0, k=2)
