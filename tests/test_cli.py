"""The CLI turns every bad input into one line on stderr and exit code 2, never a traceback."""

import json
from pathlib import Path

import pytest

from symtune.cli import main

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_task(folder, rows, labels=("neg", "pos")):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").write_text(json.dumps({"name": folder.name, "labels": list(labels)}))
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def good_rows(n=6):
    return [{"text": f"text {i}", "label": ("neg", "pos")[i % 2]} for i in range(n)]


def bad_inputs(tmp):
    blocker = tmp / "blocker"
    blocker.write_text("")
    malformed = write_task(tmp / "malformed", good_rows())
    (malformed / "train.jsonl").write_text('{"text": "a", "label": "neg"}\n{"text": oops}\n')
    return {
        "missing path": ([f"{tmp}/nope"], "nope"),
        "malformed jsonl line": ([str(malformed)], "train.jsonl:2"),
        "unknown label": ([str(write_task(tmp / "unk", good_rows() + [{"text": "x", "label": "meh"}]))], "'meh'"),
        "one class": ([str(write_task(tmp / "one", [{"text": f"t{i}", "label": "neg"} for i in range(5)]))],
                      "one class"),
        "empty text": ([str(write_task(tmp / "empty", good_rows() + [{"text": " ", "label": "neg"}]))], "empty text"),
        "class smaller than k": ([str(write_task(tmp / "small", good_rows(4))), "--k-min", "3"], "fewer than"),
        "unknown format": ([str(write_task(tmp / "fmt", good_rows())), "--format", "nope"], "unknown prompt format"),
        "unknown preset": (["sst3"], "sst3"),
        "missing column": ([f"{write_csv(tmp)}?text=sentence&label=y"], "sentence"),
        "cannot fit": ([str(write_task(tmp / "fit", good_rows())), "--max-tokens", "5"], "even with one exemplar"),
        "unwritable output": ([str(write_task(tmp / "ok", good_rows())), "--out", f"{blocker}/mix"], "cannot write"),
    }


def write_csv(tmp):
    path = tmp / "table.csv"
    path.write_text("text,label\nhello,neg\nworld,pos\n")
    return path


def test_every_bad_input_is_one_clear_line_and_exit_2(tmp_path, capsys):
    for case, (args, needle) in bad_inputs(tmp_path).items():
        spec, *rest = args
        out_dir = tmp_path / f"out-{case.replace(' ', '-')}"
        argv = (["data", "build", "--tasks", spec, "--n", "5"]
                + (rest if "--out" in rest else rest + ["--out", str(out_dir)]))
        code, out, err = run(capsys, *argv)
        assert code == 2, case
        assert err.startswith("symtune: error: ") and err.count("\n") == 1, (case, err)
        assert needle in err, (case, err)
        assert "Traceback" not in err
        assert not out_dir.exists() or not any(out_dir.iterdir()), case


def test_build_then_show(tmp_path, capsys):
    task = write_task(tmp_path / "t", good_rows(20))
    code, out, _ = run(capsys, "data", "build", "--tasks", str(task), "--out", str(tmp_path / "mix"), "--n", "7")
    assert code == 0 and "7 prompts" in out
    manifest = json.loads((tmp_path / "mix" / "manifest.json").read_text())
    assert manifest["tasks"]["t"]["count"] == 7
    code, out, _ = run(capsys, "data", "show", str(tmp_path / "mix"), "--n", "2")
    assert code == 0 and out.count("=== ") == 2


@pytest.mark.skipif(not SHARED.exists(), reason="needs ../shared/data")
def test_build_from_shared_tasks_and_refuse_bigbench(tmp_path, capsys):
    tasks = ",".join(str(SHARED / t) for t in ("sst2", "mnli", "trec"))
    code, out, _ = run(capsys, "data", "build", "--tasks", tasks, "--out", str(tmp_path / "mix"), "--n", "300")
    assert code == 0 and "300 prompts" in out
    code, _, err = run(capsys, "data", "build", "--tasks", f"{SHARED / 'sst2'},{SHARED / 'list_functions'}",
                       "--out", str(tmp_path / "bad"))
    assert code == 2 and "evaluation-only" in err
    code, _, err = run(capsys, "data", "build", "--tasks", f"{SHARED / 'sst2'},{SHARED / 'cr'}",
                       "--out", str(tmp_path / "dev"))
    assert code == 2 and "task cr is a held-out evaluation dataset" in err and not (tmp_path / "dev").exists()
    code, out, _ = run(capsys, "data", "show", "--tasks", str(SHARED / "cr"), "--n", "1", "--natural", "--instruction")
    assert code == 0 and "Is the sentiment" in out
