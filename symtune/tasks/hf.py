"""Tasks from `datasets.load_dataset` (the hub, or local parquet / JSON / CSV files), and the
paper's named presets (presets.yaml)."""

import difflib

from symtune.errors import SymtuneError
from symtune.tasks.local import check_columns, columns, label_list, label_namer, read_presets, rows_to_examples
from symtune.tasks.task import Task

PRESETS: dict[str, dict] = read_presets()["presets"]


def load_hf(
    id,
    config=None,
    split="train",
    test_split=None,
    text="text",
    text_pair=None,
    label="label",
    labels=None,
    name=None,
    instruction=None,
    data_files=None,
    max_examples=None,
    revision=None,
    seed=0,
) -> Task:
    """A task from a `datasets` dataset: `split` gives the train examples, `test_split` the test ones.

    Class-label columns are read through the dataset's class names; `labels` renames them to
    natural names (a list in class-id order, or {class id: name}). Rows labelled -1 are dropped.
    `max_examples` caps each split to that many random rows (seeded).
    """
    import datasets  # slow to import; only this source needs it

    where = f"hf:{id}" + (f":{config}" if config else "")
    needed = list(dict.fromkeys([*columns(text), *columns(text_pair), label]))
    splits = {}
    for part in filter(None, (split, test_split)):
        ds = load_split(id, config, part, data_files, revision, where)
        check_columns(needed, ds.column_names, f"{where} [{part}]")
        if max_examples and len(ds) > max_examples:
            ds = ds.shuffle(seed=seed).select(range(max_examples))
        splits[part] = ds
    feature = splits[split].features[label]
    class_names = feature.names if isinstance(feature, datasets.ClassLabel) else None
    if class_names and isinstance(labels, list) and len(labels) != len(class_names):
        raise SymtuneError(
            f"{where}: {len(labels)} label names {labels} for the {len(class_names)} classes {class_names}"
        )
    to_label = label_namer(labels, class_names)
    train, test = (
        rows_to_examples(splits[part].select_columns(needed).to_list(), text, label, text_pair, to_label, where)
        if part else []
        for part in (split, test_split)
    )
    return Task(
        name=name or config or id.split("/")[-1],
        labels=label_list(labels, class_names, train + test),
        train=train,
        test=test,
        instruction=instruction,
        source=where,
    ).validate()


def load_split(id, config, split, data_files, revision, where):
    import datasets

    try:
        return datasets.load_dataset(id, config, split=split, data_files=data_files, revision=revision)
    except Exception as e:  # hub, file and split errors come in many types; the user needs one line
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SymtuneError(f"{where}: cannot load split {split!r}: {message}") from None


def load_preset(name: str, seed: int = 0) -> Task:
    """One of the paper's datasets by its preset name (see presets.yaml, or PRESETS)."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known presets: {', '.join(PRESETS)}"
        raise SymtuneError(f"unknown preset {name!r}{hint}")
    fields = dict(PRESETS[name])
    info = {key: fields.pop(key) for key in ("paper", "role")}
    task = load_hf(**fields, name=name, seed=seed)
    task.meta.update(info, preset=name)
    return task
