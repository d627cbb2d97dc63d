"""Small file helpers: atomic writes and JSONL reading with line-numbered errors."""

import contextlib
import json
import os
import tempfile
from pathlib import Path

from symtune.errors import SymtuneError


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path, mode="w"):
    """Write to a temp file beside `path`, then rename it into place; nothing partial remains."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise SymtuneError(f"cannot write to {path.parent}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp creates 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise SymtuneError(f"cannot write {path}: {e.strerror or e}") from None
        raise


def write_json(path, obj):
    with atomic_write(path) as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def write_jsonl(path, rows):
    with atomic_write(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_json(path):
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))  # -sig: a byte-order mark is not JSON
    except FileNotFoundError:
        raise SymtuneError(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SymtuneError(f"cannot read {path}: {e}") from None
    except json.JSONDecodeError as e:
        raise SymtuneError(f"{path}: malformed JSON at line {e.lineno}: {e.msg}") from None


def read_jsonl(path):
    """All rows of a JSONL file; a malformed line is reported with its file and line number."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").split("\n")  # not splitlines: U+2028 etc. occur inside strings
    except FileNotFoundError:
        raise SymtuneError(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SymtuneError(f"cannot read {path}: {e}") from None
    rows = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise SymtuneError(f"{path}:{lineno}: malformed JSON line: {e.msg}") from None
        if not isinstance(row, dict):
            raise SymtuneError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows


def read_yaml(path):
    """The YAML document in `path`; an unreadable file or a syntax error is one line naming the spot."""
    import yaml

    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SymtuneError(f"file not found: {path}") from None
    except UnicodeDecodeError as e:
        raise SymtuneError(f"{path}: not UTF-8 text (byte {e.start}: {e.object[e.start:e.start + 1]!r}); "
                           "save it as UTF-8") from None
    except OSError as e:
        raise SymtuneError(f"cannot read {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SymtuneError(f"{where}: malformed YAML: {what}") from None


def pyplot():
    """matplotlib.pyplot on the Agg backend: figures go to files, no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, dpi: int = 120) -> Path:
    """`fig` as a PNG at `path`, written atomically; the figure is closed. The image grows to hold
    everything drawn, so a legend wider than the panels is not cut off at the edges."""
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return Path(path)
