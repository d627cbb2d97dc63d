"""Tasks from `datasets.load_dataset` (the hub, or local parquet / JSON / CSV files), and the
paper's named presets (presets.yaml)."""

import contextlib
import difflib
import logging
import socket
import urllib.parse

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

    went_offline = False
    try:
        with quiet_hub() as went_offline:
            return datasets.load_dataset(id, config, split=split, data_files=data_files, revision=revision)
    except Exception as e:  # hub, file and split errors come in many types; the user needs one line
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = " (the hub is unreachable, so only the local cache was tried)" if went_offline else ""
        raise SymtuneError(f"{where}: cannot load split {split!r}: {message}{hint}") from None


def hub_reachable(timeout: float = 3.0) -> bool:
    from huggingface_hub import constants

    url = urllib.parse.urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def quiet_hub():
    """No retry warnings from the hub client, and offline mode (the local cache only) when the hub
    cannot be reached: otherwise the client retries with back-off, logging each try, before failing."""
    import datasets
    from huggingface_hub import constants

    loggers = [logging.getLogger(name) for name in ("huggingface_hub", "datasets", "fsspec")]
    levels = [logger.level for logger in loggers]
    offline = constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    went_offline = not constants.HF_HUB_OFFLINE and not hub_reachable()
    if went_offline:
        constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = True
    try:
        yield went_offline
    finally:
        constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = offline
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


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
