"""Tasks from local files: task folders in the shared-data format, and CSV / TSV / JSONL tables
read through a column mapping. Also the column-mapping rules that the HF source reuses."""

import csv
import functools
import sys
from pathlib import Path

import yaml

from symtune.errors import SymtuneError
from symtune.io import read_json, read_jsonl
from symtune.tasks.task import Example, Task

PRESETS_FILE = Path(__file__).with_name("presets.yaml")
# csv refuses fields over 128 KiB by default; JSONL has no such limit, and a long document is valid data
csv.field_size_limit(sys.maxsize)


@functools.cache
def read_presets() -> dict:
    """presets.yaml: {"presets": {name: fields}, "local_eval": [name], "local_instructions": {name: sentence}}."""
    return yaml.safe_load(PRESETS_FILE.read_text(encoding="utf-8"))


def default_instruction(name: str) -> str | None:
    """The instruction of the preset of that name, else of the shared-data task of that name."""
    presets = read_presets()
    if name in presets["presets"]:
        return presets["presets"][name]["instruction"]
    return presets["local_instructions"].get(name)


def label_namer(labels=None, class_names=None):
    """A function from a raw label value to its natural name, or None to drop the row.

    Raw values that already are one of `labels` stay as they are. Other values are class ids:
    `labels` is either the natural names in class-id order or a {class id: name} dict, and
    without `labels` the dataset's own class names are used. -1 in a class-label column means
    "no label" (SNLI) and drops the row. Anything unmapped is kept, so that validation names it.
    """
    if isinstance(labels, dict):
        by_id = {str(k): v for k, v in labels.items()}
    else:
        by_id = {str(i): v for i, v in enumerate(labels or class_names or [])}
    names = set(by_id.values())

    def to_label(raw):
        if class_names and raw == -1:
            return None
        value = str(int(raw)) if isinstance(raw, bool) else str(raw)
        return value if value in names else by_id.get(value, value)

    return to_label


def label_list(labels, class_names, examples: list[Example]) -> list[str]:
    """The task's label names: as given, else the dataset's class names, else those seen (sorted)."""
    if isinstance(labels, dict):
        return list(dict.fromkeys(labels.values()))
    return list(labels or class_names or sorted({ex.label for ex in examples}))


def check_columns(needed, available, where: str):
    for column in needed:
        if column not in available:
            raise SymtuneError(f"{where}: no column {column!r}; available: {', '.join(map(str, available))}")


def columns(spec) -> list[str]:
    """A text column mapping: one column name, or several (their values are joined by newlines)."""
    if spec is None:
        return []
    return [spec] if isinstance(spec, str) else list(spec)


def rows_to_examples(rows, text, label, text_pair=None, to_label=str, where="") -> list[Example]:
    text_columns, pair_columns = columns(text), columns(text_pair)
    needed = [*text_columns, *pair_columns, label]
    examples = []
    for i, row in enumerate(rows, 1):
        if any(column not in row for column in needed):
            check_columns(needed, row, f"{where}, row {i}")
        name = to_label(row[label])
        if name is None:
            continue
        pair = join_fields(row, pair_columns) if pair_columns else None
        examples.append(Example(join_fields(row, text_columns), name, pair))
    return examples


def join_fields(row, names) -> str:
    return "\n".join(["" if row[n] is None else str(row[n]) for n in names])


def is_task_dir(path) -> bool:
    return (Path(path) / "train.jsonl").is_file()


def load_task_dir(path) -> Task:
    """A folder with train.jsonl, optional test.jsonl and meta.json ({"name", "labels", ...})."""
    path = Path(path)
    if not path.is_dir():
        raise SymtuneError(f"task folder not found: {path}")
    if not is_task_dir(path):
        raise SymtuneError(f"{path}: a task folder needs a train.jsonl")
    meta = read_json(path / "meta.json") if (path / "meta.json").is_file() else {}
    check_meta(meta, path / "meta.json")
    name = meta.get("name") or path.name
    if name in read_presets()["local_eval"]:
        meta = {**meta, "role": "eval"}
    train_rows = read_jsonl(path / "train.jsonl")
    test_rows = read_jsonl(path / "test.jsonl") if (path / "test.jsonl").is_file() else []
    pair = "text_pair" if train_rows and "text_pair" in train_rows[0] else None
    to_label = label_namer(meta.get("labels"))  # class ids (0, 1, ...) name the labels in meta.json's order
    train, test = (
        rows_to_examples(rows, "text", "label", pair, to_label, where=str(path / file))
        for rows, file in ((train_rows, "train.jsonl"), (test_rows, "test.jsonl"))
    )
    return Task(
        name=name,
        labels=label_list(meta.get("labels"), None, train + test),
        train=train,
        test=test,
        instruction=meta.get("instruction") or default_instruction(name),
        source=str(path),
        meta=meta,
    ).validate()


def check_meta(meta, where) -> None:
    """meta.json: a mapping; name and instruction strings; labels a list of names or {class id: name}."""
    if not isinstance(meta, dict):
        raise SymtuneError(f"{where}: must be a JSON object with name, labels and instruction")
    for key in ("name", "instruction"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise SymtuneError(f"{where}: field {key!r} must be a string, got {meta[key]!r:.40}")
    labels = meta.get("labels")
    names = list(labels.values()) if isinstance(labels, dict) else labels
    if labels is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise SymtuneError(f"{where}: field 'labels' must be a list of label names (or {{class id: name}}), "
                           f"got {labels!r:.60}")


def read_table(path, sep=None) -> list[dict]:
    """Rows of a .jsonl file, or of a delimited file (.csv, .tsv, or any file with `sep`) with a header."""
    path = Path(path)
    if path.suffix == ".jsonl" and sep is None:
        return read_jsonl(path)
    sep = sep or {".csv": ",", ".tsv": "\t"}.get(path.suffix)
    if sep is None:
        raise SymtuneError(f"{path}: unsupported table type {path.suffix!r} (use .csv, .tsv or .jsonl, or give sep)")
    # Tab-separated NLP files (GLUE, SST) contain bare quote characters: read them literally.
    quoting = csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL
    try:
        # utf-8-sig: Excel starts a CSV with a byte-order mark, which would otherwise stick to the first column name
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f, delimiter=sep, quoting=quoting)
            try:
                return list(reader)
            except csv.Error as e:  # the inner reader's count is the line being read; DictReader's lags one row
                raise SymtuneError(f"{path}:{reader.reader.line_num}: malformed line: {e}") from None
    except FileNotFoundError:
        raise SymtuneError(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SymtuneError(f"cannot read {path}: {e}") from None


def load_table(path, text="text", label="label", text_pair=None, labels=None, name=None, test=None, sep=None) -> Task:
    """A task from a CSV / TSV / JSONL file (and an optional test file of the same layout).

    `text` / `text_pair` name a column each, or a list of columns joined by newlines. The label
    set is `labels` if given (names, or natural names for class ids 0, 1, ...), else the sorted
    label values found.
    """
    to_label = label_namer(labels)
    train, test_examples = (
        rows_to_examples(read_table(file, sep), text, label, text_pair, to_label, where=str(file)) if file else []
        for file in (path, test)
    )
    return Task(
        name=name or Path(path).stem,
        labels=label_list(labels, None, train + test_examples),
        train=train,
        test=test_examples,
        source=str(path),
    ).validate()
