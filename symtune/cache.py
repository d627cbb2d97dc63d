"""The request cache: finished scoring requests of one model, so an interrupted evaluation resumes."""

import hashlib
import json
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path

from symtune.errors import SymtuneError
from symtune.io import atomic_write


def request_key(kind: str, *parts) -> str:
    return hashlib.sha256(json.dumps([kind, *parts], ensure_ascii=False).encode()).hexdigest()[:32]


class RequestCache:
    """Finished requests of one model, append-only JSONL (one file per process), so an
    interrupted evaluation resumes. A line cut off by a crash is dropped on reading. Each line
    keeps its share of its batch's seconds, so a re-run can still say what its requests cost."""

    def __init__(self, folder, fingerprint: str, process_index: int = 0):
        self.results, self.seconds, self.asked = {}, {}, set()
        self.path = Path(folder) / f"{fingerprint}.{process_index}.jsonl"
        for path in sorted(Path(folder).glob(f"{fingerprint}.*.jsonl")):
            text = path.read_text(encoding="utf-8")
            complete = text.rpartition("\n")[0]
            for lineno, line in enumerate(complete.split("\n"), 1):
                try:
                    row = json.loads(line) if line else None
                    if row:
                        self.results[row["key"]], self.seconds[row["key"]] = row["result"], row["seconds"]
                except (json.JSONDecodeError, TypeError, KeyError):
                    raise SymtuneError(f"{path}:{lineno}: damaged cache line; delete the file to start over") from None
            if path == self.path and not text.endswith("\n"):
                with atomic_write(path) as f:  # drop a cut-off line
                    f.write(complete + "\n" if complete else "")

    def add(self, keys, results, seconds: float) -> None:
        """Append a finished batch; its seconds are shared out evenly over its requests."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        share = round(seconds / len(keys), 4)
        with self.path.open("a", encoding="utf-8") as f:
            for key, result in zip(keys, results):
                f.write(json.dumps({"key": key, "result": result, "seconds": share}, ensure_ascii=False) + "\n")
                self.seconds[key] = share
            f.flush()

    def spent(self) -> float:
        """Scoring seconds of every request asked for so far, cached ones at what they cost when
        first scored."""
        return round(sum(self.seconds[key] for key in self.asked), 1)

    def run(self, fn, requests: dict, **kwargs) -> dict:
        """{key: result} for {key: request}; only requests not in the cache reach fn. Several
        processes first agree on what is missing, so that they deal out the same batches."""
        # local: accelerate and batching pull in torch, which reading a cache does not need
        from accelerate.utils import gather_object

        from symtune.batching import process_state

        self.asked.update(requests)
        todo = [key for key in requests if key not in self.results]
        if process_state().num_processes > 1:
            missing = set(gather_object(todo))
            todo = [key for key in requests if key in missing]
        if todo:
            clock = [time.perf_counter()]

            def on_batch(indices, results):
                now = time.perf_counter()
                self.add([todo[i] for i in indices], [to_json(r) for r in results], now - clock[0])
                clock[0] = now

            done = fn([requests[key] for key in todo], on_batch=on_batch, **kwargs)
            self.results.update(zip(todo, map(to_json, done)))
            if process_state().num_processes > 1:  # each process timed only its own batches
                self.seconds.update(gather_object([(key, self.seconds[key]) for key in todo if key in self.seconds]))
        return {key: self.results[key] for key in requests}


def to_json(result):
    return asdict(result) if is_dataclass(result) else result
