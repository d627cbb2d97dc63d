"""The training record (symtune_training.json): what a tuned model's folder says it was tuned on.

    {"base_model": the model tuned, "tasks": [names of the tasks in its mixtures]}

The trainer writes it beside the weights; evaluation reads it to refuse scoring a model on the
tasks it was tuned on. Torch-free, so that symtune.evaluate can import it without the trainer.
"""

from pathlib import Path

from symtune.io import read_json, write_json
from symtune.validate import check_schema

TRAINING_RECORD = "symtune_training.json"
SCHEMA = {"tasks": [str]}  # what evaluation reads of it


def training_record(base_model: str, tasks) -> dict:
    return {"base_model": base_model, "tasks": sorted(tasks)}


def write_training_record(folder, record: dict) -> None:
    write_json(Path(folder) / TRAINING_RECORD, record)


def read_training_record(folder) -> dict | None:
    """The record in a model folder, checked against SCHEMA; None where the folder has none
    (a model symtune did not tune, or a hub id)."""
    path = Path(folder) / TRAINING_RECORD
    if not path.is_file():
        return None
    record = read_json(path)
    check_schema(record, SCHEMA, f"{path}: damaged training record")
    return record


def tuned_tasks(model_spec: str) -> list[str]:
    """Tasks a symtune-tuned model was trained on (its folder's training record), else []."""
    record = read_training_record(model_spec)
    return [] if record is None else record["tasks"]
