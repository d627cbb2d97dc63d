"""One validator per kind of option, used by every command: numbers, output paths, parsed files.

Numbers are checked where they are parsed (argparse `type=` functions built on `integer` and
`real`; recipes call the same two). Paths are checked once per run, before any work, by
`check_outputs`: every output must be writable and must not be, contain or lie inside an input.
Files are checked as they are parsed: `check_schema` walks a JSON document against a small schema
and names the first missing or ill-typed field.
"""

import argparse
import math
import os
import shutil
import tempfile
from pathlib import Path

from symtune.errors import SymtuneError

# ---- numbers -----------------------------------------------------------------------------


def integer(value, what: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """`value` (an int, or a string of one) as an int within [minimum, maximum]."""
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise SymtuneError(f"{what} must be a whole number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SymtuneError(f"{what} must be a whole number, got {value!r}")
    if minimum is not None and value < minimum:
        raise SymtuneError(f"{what} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise SymtuneError(f"{what} must be at most {maximum}, got {value}")
    return value


def real(value, what: str, minimum: float | None = None, maximum: float | None = None,
         above: float | None = None) -> float:
    """`value` (a number, or a string of one) as a finite float within [minimum, maximum] (and > above)."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise SymtuneError(f"{what} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SymtuneError(f"{what} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):  # nan passes every comparison below, so it is refused first
        raise SymtuneError(f"{what} must be a finite number, got {value}")
    if minimum is not None and value < minimum:
        raise SymtuneError(f"{what} must be at least {minimum:g}, got {value:g}")
    if maximum is not None and value > maximum:
        raise SymtuneError(f"{what} must be at most {maximum:g}, got {value:g}")
    if above is not None and value <= above:
        raise SymtuneError(f"{what} must be greater than {above:g}, got {value:g}")
    return value


def option_type(check, **bounds):
    """An argparse `type=` function from `integer` or `real`: argparse names the option in its error."""

    def parse(text: str):
        try:
            return check(text, "the value", **bounds)
        except SymtuneError as e:
            raise argparse.ArgumentTypeError(str(e).replace("the value ", "", 1)) from None

    parse.__name__ = check.__name__
    return parse


positive_int = option_type(integer, minimum=1)  # counts: prompts, seeds, steps, exemplars
nonnegative_int = option_type(integer, minimum=0)  # seeds, "0: use the default"
fraction = option_type(real, minimum=0.0, maximum=1.0)  # shares and flip rates


# ---- paths -------------------------------------------------------------------------------


def existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists():
        path = path.parent
    return path


def check_writable(path, what: str, file: bool = False) -> None:
    """`path` (a folder, or a file with `file`) can be created or written: probed with a temp folder
    in its nearest existing ancestor, since permission bits say nothing for root or /proc."""
    path = Path(path)
    if path.exists() and not file and not path.is_dir():
        raise SymtuneError(f"cannot write {what} {path}: it exists and is not a folder; choose another")
    if path.is_dir() and file:
        raise SymtuneError(f"cannot write {what} {path}: it is a folder; give a file name")
    base = existing_ancestor(path if path.is_dir() else path.parent)
    if not base.is_dir():
        raise SymtuneError(f"cannot write {what} {path}: {base} is a file, not a folder; choose another path")
    try:
        shutil.rmtree(tempfile.mkdtemp(dir=base, prefix=".symtune-probe-"))
    except OSError as e:
        raise SymtuneError(f"cannot write {what} {path} ({base}: {e.strerror or e}); choose another path") from None


def input_path(spec: str) -> Path | None:
    """The local path an input spec names (a task spec's part before ?query or :SUB), else None."""
    if not spec or spec.startswith(("hf:", "builtin")):
        return None
    path = spec.split("?")[0]
    if not Path(path).exists() and ":" in path:
        path = path.rpartition(":")[0]  # a BIG-bench folder with its subtask selection
    return Path(path) if Path(path).exists() else None


def overlaps(a: Path, b: Path) -> bool:
    a, b = Path(os.path.realpath(a)), Path(os.path.realpath(b))
    return a == b or a in b.parents or b in a.parents


def check_outputs(outputs: dict, inputs: dict) -> None:
    """Every output ({what: path}; a path ending in a file name is given as ("file", path)) is
    writable and is not, contains no, and lies in no input ({what: spec or path})."""
    for what, out in outputs.items():
        if out is None:
            continue
        file = isinstance(out, tuple)
        out = Path(out[1] if file else out)
        for source, spec in inputs.items():
            for one in ([] if spec is None else spec if isinstance(spec, (list, tuple)) else [spec]):
                path = input_path(str(one))
                if path is not None and overlaps(out, path):
                    raise SymtuneError(f"{what} {out} overlaps the {source} {path}: outputs must not be, contain or "
                                       f"lie inside an input; choose another {what}")
        check_writable(out, what, file=file)


def check_own_folder(out, what: str, markers: tuple[str, ...], made_by: str) -> None:
    """An existing, non-empty output folder must be one this command wrote before (it holds one of
    `markers`): anything else, a task folder above all, would have its files replaced."""
    out = Path(out)
    if out.is_dir() and any(out.iterdir()) and not any((out / m).exists() for m in markers):
        kind = "a task folder" if (out / "train.jsonl").is_file() and not (out / "manifest.json").exists() else \
            "a folder of other files"
        raise SymtuneError(f"{what} {out} is {kind}, not the output of an earlier `{made_by}`; writing there would "
                           f"replace its files: choose a new or empty folder")


class NewFolders:
    """Removes the empty folders a failed command created under its outputs (a context manager).

    Folders that existed before are kept, and so is every file: files are written atomically,
    so any file a failed command leaves is whole (a resumable cache or checkpoint)."""

    def __init__(self, paths):
        self.roots = []
        for path in map(Path, filter(None, paths)):
            path = Path(os.path.abspath(path))
            base = existing_ancestor(path)
            if base != path:  # the highest folder this command would create
                self.roots.append(base / path.relative_to(base).parts[0])
            elif path.is_dir():  # an existing folder: only its new subfolders
                self.roots += [(path, set(os.listdir(path)))]

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if kind is None:
            return False
        for root in self.roots:
            if isinstance(root, tuple):
                folder, before = root
                for name in set(os.listdir(folder)) - before if folder.is_dir() else ():
                    remove_empty_tree(folder / name)
            else:
                remove_empty_tree(root)
        return False


def remove_empty_tree(folder: Path) -> None:
    """Remove `folder` and its subfolders, bottom up, as far as they hold no file."""
    if not folder.is_dir() or folder.is_symlink():
        return
    for child in folder.iterdir():
        remove_empty_tree(child)
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty: it holds a file


# ---- parsed files ------------------------------------------------------------------------


class Each:
    """Schema: a mapping with any keys whose values all match `schema`."""

    def __init__(self, schema):
        self.schema = schema


TYPE_NAMES = {str: "a string", int: "a whole number", float: "a number", bool: "true or false", list: "a list",
              dict: "a mapping", type(None): "null"}


def check_schema(value, schema, where: str, field: str = "") -> None:
    """Raise a SymtuneError naming the first field of `value` that is missing or of the wrong type.

    A schema is a type or tuple of types; a dict {key: schema} (keys required, others allowed);
    a one-element list [schema] (a list of those); or Each(schema)."""
    name = field or "the top level"
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise SymtuneError(f"{where}: {name} must be a mapping, got {type(value).__name__}")
        for key, sub in schema.items():
            if key not in value:
                raise SymtuneError(f"{where}: missing field {join(field, key)!r}")
            check_schema(value[key], sub, where, join(field, key))
    elif isinstance(schema, list):
        if not isinstance(value, list):
            raise SymtuneError(f"{where}: {name} must be a list, got {type(value).__name__}")
        for i, item in enumerate(value):
            check_schema(item, schema[0], where, f"{field}[{i}]")
    elif isinstance(schema, Each):
        if not isinstance(value, dict):
            raise SymtuneError(f"{where}: {name} must be a mapping, got {type(value).__name__}")
        for key, item in value.items():
            check_schema(item, schema.schema, where, join(field, key))
    else:
        kinds = schema if isinstance(schema, tuple) else (schema,)
        if float in kinds:
            kinds = (*kinds, int)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            wanted = " or ".join(TYPE_NAMES.get(k, k.__name__) for k in dict.fromkeys(kinds) if k is not int or
                                 float not in kinds)
            raise SymtuneError(f"{where}: field {name!r} must be {wanted}, got {value!r:.40}")


def join(field: str, key) -> str:
    return f"{field}.{key}" if field else str(key)
