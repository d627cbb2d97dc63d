"""Hostile input and faults (issue #27): every bad input is exit code 2 and one line on stderr, no
traceback, inputs unchanged, and no temp file or new empty folder left behind. The inputs that
must work (a CSV with a byte-order mark, a huge CSV field, numeric labels) work."""

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from symtune.cli import main
from symtune.errors import SymtuneError
from symtune.io import write_json
from symtune.validate import check_schema

ROOT = Path(__file__).resolve().parents[1]
LABELS = ("negative", "positive")


def rows(n=20, labels=LABELS):
    return [{"text": f"sentence number {i} about things", "label": labels[i % 2]} for i in range(n)]


def task_folder(folder: Path, train=None, test=None, labels=LABELS) -> Path:
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps({"name": folder.name, "labels": list(labels),
                                                  "instruction": "Is it good?"}))
    for name, content in (("train.jsonl", rows() if train is None else train),
                          ("test.jsonl", rows(8) if test is None else test)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in content))
    return folder


def snapshot(*paths) -> dict:
    """Every file under `paths` with its content hash: inputs must come out unchanged."""
    files = {}
    for path in map(Path, paths):
        for f in sorted(path.rglob("*") if path.is_dir() else [path]):
            files[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest() if f.is_file() else "dir"
    return files


def refused(capsys, tmp_path, argv, needle, inputs=()):
    """Run the CLI on argv: exit 2, one line naming `needle`, inputs unchanged, nothing new in tmp_path
    (other than the inputs), in particular no temp file and no empty folder."""
    before_inputs = snapshot(*inputs)
    before = set(map(str, tmp_path.rglob("*")))
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    assert code == 2, (argv, err)
    assert err.startswith("symtune: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert needle in err, err
    assert snapshot(*inputs) == before_inputs
    assert set(map(str, tmp_path.rglob("*"))) == before, "the failed command left files or folders"
    return err


def build(tmp_path, *args, out=None):
    return list(map(str, ["data", "build", "--out", out or tmp_path / "mix", "--n", "5", *args]))


# ---- the 16 cases --------------------------------------------------------------------------


def test_01_empty_train_file_is_an_error_not_a_hang(tmp_path, capsys):
    folder = task_folder(tmp_path / "F", train=[])
    refused(capsys, tmp_path, build(tmp_path, "--tasks", folder), "no train examples", [folder])


def test_01_an_empty_query_pool_is_an_error_not_a_spin():
    from symtune.mixture import query_stream

    with pytest.raises(SymtuneError, match="no query examples"):
        next(query_stream([], 5, 0))


@pytest.mark.parametrize("cap", ["0", "-1", "2.5", "x"])
def test_02_cap_must_be_a_positive_whole_number(tmp_path, capsys, cap):
    folder = task_folder(tmp_path / "F")
    refused(capsys, tmp_path, build(tmp_path, "--tasks", folder, "--cap", cap), "argument --cap", [folder])


def test_03_csv_with_a_byte_order_mark_works(tmp_path, capsys):
    path = tmp_path / "reviews.csv"
    lines = ["review,stars"] + [f"review number {i},{('bad', 'good')[i % 2]}" for i in range(20)]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode())  # as Excel writes it
    code = main(["data", "build", "--tasks", f"{path}?text=review&label=stars", "--out", str(tmp_path / "mix"),
                 "--n", "5"])
    assert code == 0, capsys.readouterr().err
    assert len((tmp_path / "mix" / "train.jsonl").read_text().splitlines()) == 5


def test_04_csv_field_over_128_kib_works(tmp_path, capsys):
    path = tmp_path / "long.csv"
    long_text = "word " * 40_000  # 200 KB
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows([[f"short {i}", ("neg", "pos")[i % 2]] for i in range(10)] + [[long_text, "pos"]])
    code = main(["data", "build", "--tasks", str(path), "--out", str(tmp_path / "mix"), "--n", "3", "--k-max", "2"])
    assert code == 0, capsys.readouterr().err


def test_04_a_malformed_csv_line_is_named_by_its_own_number(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("text,label\nfine,neg\nalso fine,pos\n" + "x" * 200 + ",neg\nlast,pos\n")
    limit = csv.field_size_limit(100)  # the one csv error left once the limit is lifted: a field over it
    try:
        refused(capsys, tmp_path, ["data", "show", "--tasks", f"{path}?sep=,"], "bad.csv:4:", [path])
    finally:
        csv.field_size_limit(limit)


@pytest.mark.parametrize("flag,value", [("--n", "-1"), ("--n", "0"), ("--k", "0"), ("--seed", "-3")])
def test_05_data_show_checks_its_numbers(tmp_path, capsys, flag, value):
    folder = task_folder(tmp_path / "F")
    refused(capsys, tmp_path, ["data", "show", "--tasks", folder, flag, value], f"argument {flag}", [folder])


@pytest.mark.parametrize("flip", ["1.7", "-0.5", "nan", "inf"])
def test_06_flip_must_be_a_fraction(tmp_path, capsys, flip):
    folder = task_folder(tmp_path / "F")
    refused(capsys, tmp_path, ["data", "show", "--tasks", folder, "--flip", flip], "argument --flip", [folder])


def test_07_data_show_of_a_task_folder_says_to_use_tasks(tmp_path, capsys):
    folder = task_folder(tmp_path / "F")
    refused(capsys, tmp_path, ["data", "show", folder], "is a task folder, not a mixture", [folder])


def test_07_data_show_of_rows_without_prompts_is_refused(tmp_path, capsys):
    folder = tmp_path / "M"
    folder.mkdir()
    (folder / "train.jsonl").write_text('{"text": "a", "label": "b"}\n')
    refused(capsys, tmp_path, ["data", "show", folder], "needs a non-empty string prompt", [folder])


@pytest.mark.parametrize("out", ["/proc/x", "/proc/nope/x", "BLOCKER/x"])
def test_08_eval_checks_out_before_loading_anything(tmp_path, capsys, monkeypatch, out):
    folder = task_folder(tmp_path / "F")
    (tmp_path / "BLOCKER").write_text("")

    def no_model(*args, **kwargs):
        raise AssertionError("--out must be checked before the model loads")

    monkeypatch.setattr("symtune.models.load_model", no_model)
    out = out.replace("BLOCKER", str(tmp_path / "BLOCKER"))
    refused(capsys, tmp_path, ["eval", "--model", "m", "--suite", "grid", "--tasks", folder, "--out", out, "--n", "1"],
            "cannot write --out", [folder])


@pytest.mark.parametrize("where", ["itself", "inside", "other task", "parent of tasks"])
def test_09_data_build_never_writes_over_an_input(tmp_path, capsys, where):
    root = tmp_path / "data"
    folder, other = task_folder(root / "F"), task_folder(root / "G")
    tasks, out = {"itself": (folder, folder), "inside": (folder, folder / "mix"), "other task": (folder, other),
                  "parent of tasks": (f"{folder},{other}", root)}[where]
    needle = "is a task folder" if where == "other task" else "overlaps the task"
    refused(capsys, tmp_path, build(tmp_path, "--tasks", tasks, out=out), needle, [root])


@pytest.mark.parametrize("damage,needle", [
    (lambda r: r.pop("conditions"), "missing field 'conditions'"),
    (lambda r: r.update(conditions={"a": 1}), "conditions must be a list"),
    (lambda r: r["conditions"][0].pop("label"), "missing field 'conditions[0].label'"),
    (lambda r: r["models"]["m"]["conditions"]["c"]["mean"].update(metrics=[]), "models.m.conditions.c.mean.metrics"),
    (lambda r: r["models"]["m"]["conditions"].clear(), "no results for condition 'c'"),
    (lambda r: r.update(suite="banana"), "unknown suite 'banana'"),
])
def test_10_report_validates_the_results_file(tmp_path, capsys, damage, needle):
    results = results_file()
    damage(results)
    write_json(tmp_path / "results.json", results)
    refused(capsys, tmp_path, ["report", tmp_path / "results.json", "--out", tmp_path / "plots"], needle,
            [tmp_path / "results.json"])


def results_file() -> dict:
    summary = {"mean": 0.5, "stderr": 0.1, "per_seed": [0.4, 0.6]}
    cell = {"chance": 0.5, "metrics": {"acc": summary}}
    return {"suite": "grid", "config": {"n": 2, "k": 1, "seeds": [0, 1]},
            "conditions": [{"name": "c", "label": "C", "k": 1, "x": None}],
            "models": {"m": {"conditions": {"c": {"mean": cell, "tasks": {"t": cell}, "families": {}}}}}}


def test_10_a_valid_results_file_still_plots(tmp_path, capsys):
    write_json(tmp_path / "results.json", results_file())
    assert main(["report", str(tmp_path / "results.json"), "--out", str(tmp_path / "plots")]) == 0
    assert (tmp_path / "plots" / "grid.png").is_file()


def test_11_study_report_validates_and_leaves_no_folder(tmp_path, capsys):
    write_json(tmp_path / "r.json", {"study": "generalization"})
    refused(capsys, tmp_path, ["study", "report", tmp_path / "r.json", "--out", tmp_path / "docs" / "studies.md"],
            "missing field 'command'", [tmp_path / "r.json"])
    (tmp_path / "docs").mkdir()
    refused(capsys, tmp_path, ["study", "report", tmp_path / "r.json", "--out", tmp_path / "docs" / "studies.md"],
            "missing field", [tmp_path / "r.json"])


def test_12_recipe_that_is_not_utf8_is_one_line(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_bytes(b"lr: 1e-4\n# caf\xe9\n")
    refused(capsys, tmp_path, ["tune", "--model", "m", "--data", "d", "--out", tmp_path / "run", "--recipe", recipe],
            "not UTF-8", [recipe])


def test_12_malformed_yaml_is_one_line_with_its_position(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("lr: 1e-4\nmax_steps: [1,\n")
    refused(capsys, tmp_path, ["tune", "--model", "m", "--data", "d", "--out", tmp_path / "run", "--recipe", recipe],
            "r.yaml:3:", [recipe])


@pytest.mark.parametrize("override,needle", [
    ("lr=nan", "lr must be a finite number"), ("lr=.inf", "lr must be a finite number"), ("lr=0", "lr must be greater"),
    ("warmup_steps=-7", "warmup_steps must be at least 0"), ("weight_decay=-1", "weight_decay must be at least 0"),
    ("max_grad_norm=nan", "max_grad_norm must be a finite"), ("lora_dropout=1.5", "lora_dropout must be at most"),
    ("lora_alpha=0", "lora_alpha must be at least 1"),
])
def test_13_recipe_numbers_are_checked(tmp_path, capsys, override, needle):
    refused(capsys, tmp_path, ["tune", "--model", "m", "--data", "d", "--out", tmp_path / "run", "--set", override],
            needle)


@pytest.mark.parametrize("flag", ["--n", "--seeds", "--k-max", "--k"])
def test_14_demo_checks_its_numbers_before_loading_a_model(tmp_path, capsys, monkeypatch, flag):
    monkeypatch.setattr("symtune.demo.evaluate", lambda *a, **k: pytest.fail("nothing may run"))
    refused(capsys, tmp_path, ["demo", "--out", tmp_path / "demo", flag, "0"], f"argument {flag}")


def test_16_numeric_labels_in_a_task_folder_map_to_meta_names(tmp_path, capsys):
    numeric = [{"text": r["text"], "label": LABELS.index(r["label"])} for r in rows()]
    folder = task_folder(tmp_path / "F", train=numeric, test=numeric[:8])
    assert main(build(tmp_path, "--tasks", folder, "--natural")) == 0, capsys.readouterr().err
    built = [json.loads(line) for line in (tmp_path / "mix" / "train.jsonl").read_text().splitlines()]
    assert {label for row in built for label in row["labels"]} == set(LABELS)


def test_16_an_unknown_numeric_label_names_the_labels(tmp_path, capsys):
    folder = task_folder(tmp_path / "F", train=rows() + [{"text": "one more", "label": 7}])
    refused(capsys, tmp_path, build(tmp_path, "--tasks", folder), "label '7' is not one of", [folder])


# ---- the smaller points --------------------------------------------------------------------


def test_late_errors_leave_no_empty_out_folder(tmp_path, capsys):
    folder = task_folder(tmp_path / "F")
    # the task loads and --out is valid; the format fails only while prompts are built
    refused(capsys, tmp_path, build(tmp_path, "--tasks", folder, "--format", "nope", out=tmp_path / "a" / "b" / "mix"),
            "unknown prompt format", [folder])


def test_argparse_errors_are_one_line(tmp_path, capsys):
    refused(capsys, tmp_path, ["data", "build", "--tasks", "t", "--out", tmp_path / "o", "--bogus"],
            "unrecognized arguments")
    refused(capsys, tmp_path, ["eval", "--suite", "banana", "--out", tmp_path / "o"], "argument --suite")
    refused(capsys, tmp_path, ["nope"], "argument command")


def test_hf_spec_without_network_is_one_quiet_line(tmp_path, capsys, monkeypatch):
    import symtune.tasks.hf as hf

    monkeypatch.setattr(hf, "hub_reachable", lambda timeout=3.0: False)
    err = refused(capsys, tmp_path, ["data", "show", "--tasks", "hf:nobody-here/no-such-dataset?text=a&label=b"],
                  "hub is unreachable")
    assert "Retrying" not in err


def test_report_refuses_an_unknown_suite(tmp_path, capsys):
    results = results_file()
    results["suite"] = "banana"
    write_json(tmp_path / "results.json", results)
    refused(capsys, tmp_path, ["report", tmp_path / "results.json", "--out", tmp_path / "plots"], "unknown suite")
    assert not (tmp_path / "plots").exists()


def test_report_out_must_not_hold_its_input(tmp_path, capsys):
    write_json(tmp_path / "results.json", results_file())
    refused(capsys, tmp_path, ["report", tmp_path / "results.json", "--out", tmp_path], "overlaps the results file",
            [tmp_path / "results.json"])


def test_two_builds_with_one_seed_are_byte_identical(tmp_path, capsys):
    folder = task_folder(tmp_path / "F")
    for out in ("a", "b"):
        assert main(build(tmp_path, "--tasks", str(folder), out=str(tmp_path / out))) == 0
    for name in ("train.jsonl", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert "seconds" not in (tmp_path / "a" / "manifest.json").read_text()


def test_a_rebuild_replaces_its_own_mixture(tmp_path, capsys):
    folder = task_folder(tmp_path / "F")
    assert main(build(tmp_path, "--tasks", str(folder))) == 0
    assert main(build(tmp_path, "--tasks", str(folder), "--seed", "1")) == 0
    assert json.loads((tmp_path / "mix" / "manifest.json").read_text())["seed"] == 1


def test_the_pair_is_replaced_under_a_lock(tmp_path, monkeypatch):
    """train.jsonl is in place and manifest.json not yet: another build must still be locked out then."""
    import fcntl

    import symtune.mixture as mixture

    folder, out, checked = task_folder(tmp_path / "F"), tmp_path / "mix", []
    real_write_json = mixture.write_json

    def write_manifest(path, obj):
        assert (out / "train.jsonl").is_file()
        fd = os.open(out, os.O_RDONLY)
        with pytest.raises(BlockingIOError, match=r"\[Errno \d+\]"):  # a concurrent build would wait here
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)
        checked.append(path.name)
        real_write_json(path, obj)

    monkeypatch.setattr(mixture, "write_json", write_manifest)
    assert main(build(tmp_path, "--tasks", folder)) == 0
    assert checked == ["manifest.json"]
    fd = os.open(out, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released once the build is done
    os.close(fd)


def test_schema_names_the_field():
    with pytest.raises(SymtuneError, match=r"field 'a.b\[1\]' must be a whole number"):
        check_schema({"a": {"b": [1, "x"]}}, {"a": {"b": [int]}}, "f.json")


# ---- signals (subprocess: a real signal to a real process) ---------------------------------


def default_sigint():
    """A child's SIGINT as in a terminal: a suite started in the background (`cmd &`) ignores SIGINT,
    and a child that inherits the ignore would never see the signal under test."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def slow_build(tmp_path):
    """A `data build` subprocess that runs for a while; returns (process, its --out)."""
    folder = task_folder(tmp_path / "F", train=rows(400))
    out = tmp_path / "mix"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "symtune.cli", "data", "build", "--tasks", str(folder), "--out",
                             str(out), "--n", "2000000"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=default_sigint)
    deadline = time.monotonic() + 120
    while not list(out.glob(".train.jsonl.*.tmp")):  # wait until it writes its temp file
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    return proc, out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_15_a_signal_during_build_removes_the_temp_file(tmp_path, sig):
    proc, out = slow_build(tmp_path)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert err.count("\n") == 1 and err.startswith("symtune: ") and "Traceback" not in err, err
    assert not out.exists(), list(out.iterdir())  # no temp file, and the folder it created is gone too


def test_main_restores_the_signal_handlers(tmp_path, capsys):
    before = signal.getsignal(signal.SIGTERM)
    main(["data", "show", "--tasks", str(task_folder(tmp_path / "F")), "--n", "1"])
    assert signal.getsignal(signal.SIGTERM) is before


# ---- kill and resume under the signal handling ---------------------------------------------

SLOW = """import importlib, sys, time
owner = importlib.import_module({module!r})
for part in {owner!r}:
    owner = getattr(owner, part)
real = getattr(owner, {name!r})
def slow(*args, **kwargs):
    result = real(*args, **kwargs)
    time.sleep(0.4)  # slow enough that the signal lands mid-run
    return result
setattr(owner, {name!r}, slow)
from symtune.cli import main
sys.exit(main(sys.argv[1:]))
"""


def start_slowed(target: str, argv: list[str]) -> subprocess.Popen:
    """The CLI in a subprocess, with `target` ("module:attr.attr") slowed down: a step, a cache write."""
    module, _, path = target.partition(":")
    *owner, name = path.split(".")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = SLOW.format(module=module, owner=owner, name=name)
    return subprocess.Popen([sys.executable, "-c", code, *map(str, argv)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop_when(proc: subprocess.Popen, ready, sig) -> str:
    deadline = time.monotonic() + 300
    while not ready():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == (-sig if sig == signal.SIGKILL else 128 + sig), err
    return err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_tune_resumes_after_a_signal(tiny_model_dir, tmp_path, capsys, sig):
    from helpers import toy_task

    from symtune.io import read_jsonl
    from symtune.mixture import MixtureConfig, build_mixture
    from symtune.train.loop import tune
    from symtune.train.recipe import load_recipe

    mix = tmp_path / "mix"
    build_mixture([toy_task("a", per_class=20)], mix, MixtureConfig(n=24, seed=0, k_min=1, k_max=2))
    sets = {"max_steps": 6, "batch_size": 4, "warmup_steps": 1, "save_every": 2, "bf16": False}
    argv = ["tune", "--model", tiny_model_dir, "--data", mix, "--out", tmp_path / "cut",
            *[a for k, v in sets.items() for a in ("--set", f"{k}={str(v).lower()}")]]
    proc = start_slowed("symtune.train.loop:train_step", argv)
    err = stop_when(proc, lambda: (tmp_path / "cut" / "checkpoints" / "step-000002").is_dir(), sig)
    if sig != signal.SIGKILL:
        assert f"\nsymtune: stopped by {signal.Signals(sig).name}\n" in err and "Traceback" not in err, err
    assert main(list(map(str, argv + ["--resume"]))) == 0, capsys.readouterr().err
    tune(str(tiny_model_dir), mix, tmp_path / "whole", load_recipe("cpu-small", sets), progress=False)
    losses = [[row["loss"] for row in read_jsonl(tmp_path / run / "train_log.jsonl")] for run in ("cut", "whole")]
    assert losses[0] == pytest.approx(losses[1], abs=1e-6) and len(losses[0]) == 6


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_eval_resumes_after_a_signal(tiny_model_dir, tmp_path, capsys, sig):
    folder = task_folder(tmp_path / "F")
    argv = ["eval", "--model", tiny_model_dir, "--suite", "grid", "--tasks", folder, "--n", "3", "--k", "1",
            "--seeds", "1", "--token-budget", "64", "--dtype", "float32", "--no-calibration"]
    proc = start_slowed("symtune.cache:RequestCache.add", argv + ["--out", tmp_path / "cut"])
    err = stop_when(proc, lambda: any(p.stat().st_size for p in (tmp_path / "cut" / "cache").glob("*.jsonl")), sig)
    if sig != signal.SIGKILL:
        assert f"\nsymtune: stopped by {signal.Signals(sig).name}\n" in err and "Traceback" not in err, err
    assert not (tmp_path / "cut" / "results.json").exists()
    for out in ("cut", "whole"):
        assert main(list(map(str, argv + ["--out", tmp_path / out]))) == 0, capsys.readouterr().err
    preds = [json.loads((tmp_path / out / "results.json").read_text())["models"][str(tiny_model_dir)]["predictions"]
             for out in ("cut", "whole")]
    assert [(p["id"], p.get("prediction")) for p in preds[0]] == [(p["id"], p.get("prediction")) for p in preds[1]]


@pytest.mark.parametrize("meta,needle", [([1, 2], "must be a JSON object"), ({"labels": "ab"}, "field 'labels'"),
                                         ({"name": 3}, "field 'name' must be a string")])
def test_a_damaged_meta_json_is_one_line(tmp_path, capsys, meta, needle):
    folder = task_folder(tmp_path / "F")
    (folder / "meta.json").write_text(json.dumps(meta))
    refused(capsys, tmp_path, ["data", "show", "--tasks", folder], needle, [folder])
