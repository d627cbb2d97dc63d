"""Evaluation suites (papers.md §1.7–1.10, §2.2, §6.1): seeded prompts, scoring, aggregation.

A suite is a list of conditions (a prompt Setting and k). Every (condition, task, seed) gives
n prompts, all built before any model loads, so every model sees the same prompts. Each prompt
is scored by rank classification over its presented labels: `acc` (summed log-probability),
`acc_norm` (per token) and `acc_calibrated` (minus the score after a content-free prompt, the
query replaced by "N/A"). BIG-bench prompts, and all prompts with `generate`, are also answered
by greedy generation and exact match; outputs that are not a label count as wrong.

Aggregation: a task's accuracy per seed, its mean and standard error over seeds; the
unweighted mean over tasks per seed, and its mean and standard error over seeds.
"""

import hashlib
import json
import platform
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, is_dataclass
from functools import partial
from pathlib import Path

from symtune import __version__
from symtune.errors import SymtuneError
from symtune.io import atomic_write, read_json
from symtune.mixture import TRAINING_RECORD
from symtune.prompts import (
    GRID, Setting, build_eval_prompts, build_generation_prompt, eval_queries, input_text, max_k, render,
)
from symtune.stats import expected_half_width, mean_se
from symtune.tasks.task import Task, family

SUITES = ("grid", "flipped", "kcurve", "algorithmic", "linear", "headline")
FLIP_PERCENTS = (0, 25, 50, 75, 100)  # paper 2's sweep (exact grid UNVERIFIED, papers.md §2.2)
K_CURVE = (1, 2, 4, 8)
CONTENT_FREE = "N/A"
SELF_CONTAINED = ("simp_turing_concept",)  # BIG-bench families whose inputs already hold their shots


@dataclass(frozen=True)
class Condition:
    name: str  # key in the results
    label: str  # column heading
    setting: Setting = Setting()
    k: int = 4
    x: float | None = None  # position on a curve (percent flipped, k); None: a bar
    binary_only: bool = False  # flips need two classes; other tasks are left out (papers.md §1.10)
    generation: bool = False  # BIG-bench prompts: input -> target by generation


def grid_label(setting: Setting) -> str:
    """The paper's column names: ✓/✗ instruction, ✓/✗ relevant (natural) labels."""
    return ("✓" if setting.instruction else "✗") + ("✓" if not setting.symbols else "✗")


def suite_conditions(suite: str, k: int = 4) -> list[Condition]:
    if suite == "grid":  # in the column order of the paper's Table 1: ✓✓ ✗✓ ✓✗ ✗✗
        settings = sorted(GRID, key=lambda s: (s.symbols, not s.instruction))
        return [Condition(s.name, f"{grid_label(s)} {s.name}", s, k) for s in settings]
    paper1 = Condition("flipped", "flipped (paper 1)", Setting(symbols=False, flip_query=True), k, binary_only=True)
    if suite == "headline":  # the cells where tuning could change how exemplars are used (docs/results.md)
        every_flip = Condition("flip100", "100% flipped", Setting(symbols=False, flip=1.0), k, binary_only=True)
        grid = {s.name: Condition(s.name, f"{grid_label(s)} {s.name}", s, k) for s in GRID}
        return [every_flip, paper1, grid["noinstr-symbols"], grid["instr-natural"]]
    if suite == "flipped":
        sweep = [
            Condition(f"flip{p}", f"{p}% flipped", Setting(symbols=False, flip=p / 100), k, x=p, binary_only=True)
            for p in FLIP_PERCENTS
        ]
        return [paper1, *sweep]
    if suite == "kcurve":
        return [Condition(f"k{j}", f"k={j}", Setting(), j, x=j) for j in K_CURVE]
    if suite == "linear":
        return [Condition(s.name, f"{grid_label(s)} {s.name}", s, k) for s in (Setting(symbols=False), Setting())]
    if suite == "algorithmic":
        return [Condition("bigbench", f"BIG-bench {k}-shot", k=k, generation=True)]
    raise SymtuneError(f"unknown suite {suite!r}; choose one of {', '.join(SUITES)}")


@dataclass
class EvalConfig:
    suite: str
    n: int = 100  # prompts per task and seed (the paper: at most 100)
    k: int = 4  # exemplars per class (the paper: 4)
    seeds: tuple[int, ...] = (0, 1, 2)
    fmt: str | None = None  # one fixed prompt format; None: a seeded random one per prompt
    calibrate: bool = True  # content-free calibration (the query block twice; the exemplars once)
    generate: bool = False  # also greedy generation + exact match on classification prompts
    max_new_tokens: int = 48  # generation stops at the line break; BIG-bench lists take ~3 tokens an element
    token_budget: int | None = None  # prompt tokens a batch holds in its cache (None: by device and job)
    max_prompt_tokens: int | None = None  # drop exemplars to fit (estimated tokens, model-independent)
    dtype: str = "auto"  # float32, bfloat16, or auto: bfloat16 where the CPU or GPU computes it natively
    attn_implementation: str | None = None  # transformers' attention kernel (None: its default, sdpa)
    allow_seen: bool = False


def check_task(task: Task, cond: Condition, cfg: EvalConfig) -> None:
    if not task.test:
        raise SymtuneError(f"task {task.name} has no test split to evaluate on")
    if cond.generation != task.is_generation:
        kind = "a generation" if task.is_generation else "a classification"
        raise SymtuneError(f"task {task.name} is {kind} task; the {cfg.suite} suite cannot evaluate it")
    if not task.is_generation and cond.k > max_k(task):
        smallest = min(map(len, task.train_by_label.values()))
        raise SymtuneError(
            f"task {task.name}: k={cond.k} exemplars per class, but a class has only {smallest} train examples"
        )


def classification_items(task: Task, cond: Condition, seed: int, cfg: EvalConfig, skip=frozenset()) -> list[dict]:
    prompts = build_eval_prompts(task, n=cfg.n, k=cond.k, setting=cond.setting, seed=seed, fmt=cfg.fmt,
                                 max_tokens=cfg.max_prompt_tokens, skip=skip)
    items = []
    for prompt in prompts:
        item = {"text": prompt.text, "target": prompt.target, "candidates": prompt.candidates,
                "answer": prompt.answer, "format": prompt.format, "position": prompt.position,
                "exemplars_per_class": prompt.n_exemplars / len(prompt.candidates)}
        if cfg.calibrate:  # the query's block, and the same block with the input replaced by "N/A"
            item["query"] = render(prompt.format, input_text(prompt.query))
            item["content_free"] = render(prompt.format, CONTENT_FREE)
            if not prompt.text.endswith(item["query"]):
                raise SymtuneError(f"task {task.name}: the prompt does not end with its query; cannot calibrate")
        items.append(item)
    return items


def too_long_positions(task: Task, conditions: list[Condition], seed: int, cfg: EvalConfig) -> frozenset[int]:
    """Query positions whose prompt does not fit max_prompt_tokens in some condition. Every
    condition passes over all of them, so all conditions score the same queries."""
    skip = frozenset()
    while True:
        passed_over = set()
        for cond in conditions:
            positions = [item["position"] for item in classification_items(task, cond, seed, cfg, skip)]
            examined = positions[-1] + 1 if len(positions) == cfg.n else len(task.test)  # short: it saw them all
            passed_over |= set(range(examined)) - set(positions)
        if passed_over <= skip:
            break
        skip |= passed_over
    if len(skip) == len(task.test):
        raise SymtuneError(f"task {task.name}: no query's prompt fits {cfg.max_prompt_tokens} tokens even with one "
                           f"exemplar per class; raise --max-prompt-tokens")
    if skip:
        print(f"symtune: {task.name}, seed {seed}: passed over {len(skip)} queries whose prompt does not fit "
              f"{cfg.max_prompt_tokens} tokens even with one exemplar per class", file=sys.stderr)
    return skip


def candidate_sets(task: Task) -> dict:
    """For constrained scoring of a generation task: the distinct targets of the examples that
    share the query's concept (meta["concepts"], e.g. a Turing concept), else of the task."""
    concepts = task.meta.get("concepts") or [None] * len(task.test)
    groups = defaultdict(dict)
    for ex, concept in zip(task.test, concepts):
        groups[concept][ex.label] = None
    return {ex: list(groups[concept]) for ex, concept in zip(task.test, concepts)}


def generation_items(task: Task, cond: Condition, seed: int, cfg: EvalConfig) -> list[dict]:
    shots = 0 if family(task.name) in SELF_CONTAINED else cond.k
    candidates = candidate_sets(task)
    items = []
    for i, query in enumerate(eval_queries(task, cfg.n, seed)):
        prompt = build_generation_prompt(task, query, random.Random(f"{seed}/{task.name}/{i}/exemplars"), k=shots)
        cands = candidates[query] if len(candidates[query]) > 1 else []
        items.append({"text": prompt.text, "target": prompt.target, "candidates": cands,
                      "answer": cands.index(prompt.target) if cands else -1, "format": prompt.format,
                      "pattern": task.meta.get("output_regex")})
    return items


def build_items(tasks: list[Task], cfg: EvalConfig) -> tuple[list[Condition], list[dict]]:
    """The suite's conditions and every prompt to score, in a fixed order. Raises on any
    task the suite cannot evaluate before a model is loaded."""
    conditions = suite_conditions(cfg.suite, cfg.k)
    chosen = {}  # condition name -> the tasks it evaluates
    for cond in conditions:
        chosen[cond.name] = [t for t in tasks if not cond.binary_only or len(t.labels) == 2]
        if not chosen[cond.name]:
            raise SymtuneError(f"the {cfg.suite} suite needs binary tasks; none of {', '.join(t.name for t in tasks)} is")
        for task in chosen[cond.name]:
            check_task(task, cond, cfg)
    skips = {}
    for task in tasks:
        own = [c for c in conditions if not c.generation and (not c.binary_only or len(task.labels) == 2)]
        for seed in cfg.seeds:
            skips[task.name, seed] = too_long_positions(task, own, seed, cfg) if cfg.max_prompt_tokens else frozenset()
    items = []
    for cond in conditions:
        for task in chosen[cond.name]:
            for seed in cfg.seeds:
                build = generation_items if cond.generation else partial(classification_items, skip=skips[task.name, seed])
                for i, item in enumerate(build(task, cond, seed, cfg)):
                    items.append({"id": f"{cond.name}/{task.name}/{seed}/{i}", "task": task.name, "condition": cond.name,
                                  "seed": seed, "generation": cond.generation, **item})
    return conditions, items


# ---- the model side: cached requests ---------------------------------------------------


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
                except json.JSONDecodeError:
                    raise SymtuneError(f"{path}:{lineno}: damaged cache line; delete the file to start over") from None
                if row:
                    self.results[row["key"]] = row["result"]
                    self.seconds[row["key"]] = row.get("seconds")  # None in caches written before it was kept
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

    def spent(self) -> float | None:
        """Scoring seconds of every request asked for so far, cached ones at what they cost when
        first scored; None when some come from a cache that did not keep their time."""
        seconds = [self.seconds.get(key) for key in self.asked]
        return None if None in seconds else round(sum(seconds), 1)

    def run(self, fn, requests: dict, **kwargs) -> dict:
        """{key: result} for {key: request}; only requests not in the cache reach fn. Several
        processes first agree on what is missing, so that they deal out the same batches."""
        from accelerate.utils import gather_object

        from symtune.scoring import process_state

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
        return {key: self.results[key] for key in requests}


def to_json(result):
    return asdict(result) if is_dataclass(result) else result


def rank_request(item: dict):
    """The item's labels after its prompt; with calibration, also after the content-free query
    (both share the exemplars, which the scorer runs once)."""
    from symtune.scoring import Request

    continuations = [" " + c for c in item["candidates"]]
    if "content_free" in item:
        context = item["text"][: -len(item["query"])]
        return Request(context, continuations, (item["query"], item["content_free"]))
    return Request(item["text"], continuations)


def score_items(model, tokenizer, items: list[dict], cfg: EvalConfig, cache: RequestCache,
                progress: bool = False) -> list[dict]:
    """One record per item: prediction, scores, and 0/1 metrics."""
    from symtune.scoring import generate_until, score_requests

    rank, generate = {}, {}
    for item in items:
        if item["candidates"]:
            request = rank_request(item)
            rank[request_key("rank", *request)] = request
        if item["generation"] or cfg.generate:
            generate[request_key("generate", item["text"], cfg.max_new_tokens)] = item["text"]
    budget = {"progress": progress} | ({} if cfg.token_budget is None else {"token_budget": cfg.token_budget})
    ranked = cache.run(partial(score_requests, model, tokenizer), rank, **budget)
    generated = cache.run(partial(generate_until, model, tokenizer, max_new_tokens=cfg.max_new_tokens), generate, **budget)
    return [judge(item, ranked, generated, cfg) for item in items]


def argmax(values) -> int:
    return max(range(len(values)), key=values.__getitem__)


def judge(item: dict, ranked: dict, generated: dict, cfg: EvalConfig) -> dict:
    """The item's record. Metrics: acc / acc_norm / acc_calibrated rank the candidates (the
    presented labels, or a BIG-bench task's candidate targets); acc_gen is exact match of the
    greedy generation; label_rate says whether that generation is one of the labels."""
    from symtune.scoring import normalize

    record = {key: item[key] for key in ("id", "task", "condition", "seed", "target", "candidates", "answer")}
    metrics = {}
    if item["candidates"]:
        n = len(item["candidates"])
        scores = ranked[request_key("rank", *rank_request(item))]
        logprobs, lengths = scores["logprobs"][:n], scores["num_tokens"][:n]
        pred = argmax(logprobs)
        record.update(prediction=item["candidates"][pred], logprobs=logprobs, num_tokens=lengths)
        metrics["acc"] = pred == item["answer"]
        metrics["acc_norm"] = argmax([lp / t for lp, t in zip(logprobs, lengths)]) == item["answer"]
        if "content_free" in item:
            baseline = scores["logprobs"][n:]
            record["logprobs_content_free"] = baseline
            metrics["acc_calibrated"] = argmax([a - b for a, b in zip(logprobs, baseline)]) == item["answer"]
    if item["generation"] or cfg.generate:
        output = generated[request_key("generate", item["text"], cfg.max_new_tokens)]
        pattern = item.get("pattern")
        answer = normalize(output, pattern)
        record["generation"] = output
        metrics["acc_gen"] = answer is not None and answer == normalize(item["target"], pattern)
        if not item["generation"]:
            metrics["label_rate"] = answer in {normalize(c) for c in item["candidates"]}
    record["metrics"] = {name: float(value) for name, value in metrics.items()}
    return record


# ---- aggregation -------------------------------------------------------------------------


def mean_or_none(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def summarize(per_seed: dict[int, dict[str, float]]) -> dict:
    """{metric: {mean, stderr, per_seed}} from {seed: {metric: value}}."""
    metrics = sorted({m for values in per_seed.values() for m in values})
    return {m: {**mean_se([v[m] for v in per_seed.values() if m in v]), "per_seed": [v.get(m) for v in per_seed.values()]}
            for m in metrics}


def aggregate(records: list[dict], items: list[dict], conditions: list[Condition]) -> dict:
    """Per condition: per-task numbers, a confusion matrix, per-family and overall means."""
    chance_of = {item["id"]: 1 / len(item["candidates"]) for item in items if item["candidates"]}
    out = {}
    for cond in conditions:
        cells = defaultdict(list)  # (task, seed) -> records
        for r in records:
            if r["condition"] == cond.name:
                cells[r["task"], r["seed"]].append(r)
        tasks = list(dict.fromkeys(task for task, _ in cells))
        seeds = list(dict.fromkeys(seed for _, seed in cells))
        cell_means = {key: {m: statistics.fmean(r["metrics"][m] for r in rs if m in r["metrics"])
                            for m in {m for r in rs for m in r["metrics"]}} for key, rs in cells.items()}
        per_task = {}
        for task in tasks:
            rs = [r for s in seeds for r in cells[task, s]]
            per_task[task] = {
                "n": len(rs), "chance": mean_or_none([chance_of[r["id"]] for r in rs if r["id"] in chance_of]),
                "metrics": summarize({s: cell_means[task, s] for s in seeds}),
                "confusion": confusion(rs),
            }
        groups = defaultdict(list)
        for task in tasks:
            groups[family(task)].append(task)
        out[cond.name] = {
            "tasks": per_task,
            "families": {f: mean_over(members, seeds, cell_means, per_task)
                         for f, members in groups.items() if len(members) > 1},
            "mean": mean_over(tasks, seeds, cell_means, per_task),
        }
    return out


def mean_over(tasks: list[str], seeds: list[int], cell_means: dict, per_task: dict) -> dict:
    """The unweighted mean over tasks, per seed, summarised over seeds."""
    per_seed = {}
    for s in seeds:
        metrics = {m for t in tasks for m in cell_means[t, s]}
        per_seed[s] = {m: statistics.fmean(cell_means[t, s][m] for t in tasks if m in cell_means[t, s]) for m in metrics}
    chances = [per_task[t]["chance"] for t in tasks if per_task[t]["chance"] is not None]
    return {"n_tasks": len(tasks), "chance": mean_or_none(chances), "metrics": summarize(per_seed)}


def confusion(records: list[dict]) -> list[list[int]] | None:
    """Counts[true class][predicted class] of rank classification, in the task's label order."""
    ranked = [r for r in records if r["candidates"] and "prediction" in r and r["answer"] >= 0]
    if not ranked or any(len(r["candidates"]) != len(ranked[0]["candidates"]) for r in ranked):
        return None
    size = len(ranked[0]["candidates"])
    counts = [[0] * size for _ in range(size)]
    for r in ranked:
        counts[r["answer"]][r["candidates"].index(r["prediction"])] += 1
    return counts


# ---- running a suite ---------------------------------------------------------------------


def tuned_tasks(model_spec: str) -> list[str]:
    """Tasks a symtune-tuned model was trained on (its folder's training record), else []."""
    record = Path(model_spec) / TRAINING_RECORD
    if not record.is_file():
        return []
    tasks = read_json(record)
    tasks = tasks.get("tasks") if isinstance(tasks, dict) else None
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        raise SymtuneError(f"{record}: damaged training record (tasks must be a list of task names)")
    return tasks


def check_unseen(model_spec: str, task_names: list[str], allow_seen: bool) -> None:
    seen = set(tuned_tasks(model_spec))
    overlap = [t for t in task_names if t in seen or family(t) in seen]
    if overlap and not allow_seen:
        raise SymtuneError(
            f"model {model_spec} was tuned on {', '.join(overlap)}: evaluating on a tuning task measures "
            "nothing the paper claims (pass --allow-seen to do it anyway)"
        )


def versions() -> dict:
    import accelerate
    import torch
    import transformers

    return {"symtune": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "accelerate": accelerate.__version__}


def evaluate(model_specs: list[str], tasks: list[Task], cfg: EvalConfig, *, cache_dir, task_specs=(),
             progress: bool = False) -> dict:
    """Run a suite on every model; the results dict that report.write_results saves."""
    from symtune.models import load_model, scoring_fingerprint, torch_dtype
    from symtune.scoring import process_state

    conditions, items = build_items(tasks, cfg)
    for spec in model_specs:
        check_unseen(spec, [t.name for t in tasks], cfg.allow_seen)
    state = process_state()
    if state.is_main_process and len(model_specs) > 1:
        print(f"symtune: {precision_plan(items)}", file=sys.stderr)
    results = new_results(cfg, conditions, items, tasks, task_specs or [t.source for t in tasks])
    dtype = torch_dtype(cfg.dtype, state.device)
    dtype_name = str(dtype).removeprefix("torch.")
    for spec in model_specs:
        model, tokenizer = load_model(spec, dtype=dtype, attn_implementation=cfg.attn_implementation)
        model.to(state.device).eval()
        fingerprint = scoring_fingerprint(spec, dtype)  # cache key
        cache = RequestCache(cache_dir, fingerprint, state.process_index)
        start = time.perf_counter()
        records = score_items(model, tokenizer, items, cfg, cache, progress)
        seconds = time.perf_counter() - start  # this run's scoring time; cached requests cost none
        results["models"][spec] = {"fingerprint": fingerprint, "dtype": dtype_name, "seconds": seconds,
                                   "scoring_seconds": cache.spent(),
                                   "prompts_per_second": len(items) / seconds, **model_results(records, items, conditions)}
    return results


def precision_plan(items: list[dict]) -> str:
    """What a paired difference's interval will be at this size, said before any scoring."""
    n = min(Counter(item["condition"] for item in items).values())
    widths = ", ".join(f"±{100 * expected_half_width(n, share):.1f} points where they disagree on {share:.0%}"
                       for share in (0.1, 0.3))
    return (f"{n} prompts per condition: a paired difference between two models has a 95% interval of about "
            f"{widths} of the prompts (wider where tasks differ)")


def new_results(cfg: EvalConfig, conditions: list[Condition], items: list[dict], tasks: list[Task],
                task_specs) -> dict:
    return {
        "suite": cfg.suite, "config": {**asdict(cfg), "tasks": list(task_specs)}, "versions": versions(),
        "conditions": [condition_json(c, items) for c in conditions],
        "tasks": {t.name: {"labels": t.labels, "source": t.source} for t in tasks}, "models": {},
    }


def model_results(records: list[dict], items: list[dict], conditions: list[Condition]) -> dict:
    return {"conditions": aggregate(records, items, conditions), "predictions": records}


def condition_json(cond: Condition, items: list[dict]) -> dict:
    """The condition, and how many exemplars per class its prompts show on average (fewer than k
    where max_prompt_tokens dropped some)."""
    shown = [item["exemplars_per_class"] for item in items
             if item["condition"] == cond.name and "exemplars_per_class" in item]
    return {**asdict(cond), "setting": {**asdict(cond.setting), "name": cond.setting.name},
            "exemplars_per_class": mean_or_none(shown)}


def add_eval_parser(subparsers) -> None:
    from symtune.validate import positive_int

    p = subparsers.add_parser("eval", help="in-context-learning evaluation suites (papers.md §1.7–1.10)")
    p.add_argument("--model", action="append", default=[], help="model to evaluate (repeat for several)")
    p.add_argument("--suite", required=True, choices=SUITES)
    p.add_argument("--tasks", default=None, help="task specs, comma-separated (the linear suite defaults to builtin:linear)")
    p.add_argument("--out", required=True, help="output folder: results.json, results.md, cache/")
    p.add_argument("--n", type=positive_int, default=100, help="prompts per task and seed (paper: at most 100)")
    p.add_argument("--k", type=positive_int, default=4, help="exemplars per class (the kcurve suite sweeps 1, 2, 4, 8)")
    p.add_argument("--seeds", type=positive_int, default=3, help="number of seeds (new exemplars and symbols each)")
    p.add_argument("--format", default=None, help="one fixed prompt format (default: a seeded random one per prompt)")
    p.add_argument("--no-calibration", action="store_true", help="skip the content-free pass (acc_calibrated)")
    p.add_argument("--generate", action="store_true", help="also greedy generation + exact match on classification prompts")
    p.add_argument("--max-new-tokens", type=positive_int, default=48, help="cap on generated tokens (it stops at the line break)")
    p.add_argument("--token-budget", type=positive_int, default=None,
                   help="prompt tokens a batch may hold in its cache, one copy per scored label (memory bound; "
                        "default for ranking: 2048 on a CPU, sized from free memory on a GPU; for generation: 16384)")
    p.add_argument("--max-prompt-tokens", type=positive_int, default=None, help="drop exemplars so a prompt fits (estimated tokens)")
    p.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16"),
                   help="model weights' dtype (auto: bfloat16 where the CPU or GPU computes it natively)")
    p.add_argument("--attn-implementation", default=None,
                   help="transformers' attention kernel: sdpa (its default), eager, flash_attention_2 (pip install flash-attn), ...")
    p.add_argument("--cache", default=None, help="request cache folder (default OUT/cache)")
    p.add_argument("--allow-seen", action="store_true", help="evaluate on tasks the model was tuned on")
    p.add_argument("--export-lmeval", default=None, metavar="DIR", help="also write the suite as lm-evaluation-harness tasks")
    p.set_defaults(func=run_eval)


def run_eval(args) -> None:
    from symtune.models import cache_dir
    from symtune.report import markdown, write_results
    from symtune.scoring import process_state
    from symtune.validate import check_outputs, check_own_folder
    from symtune.tasks.registry import load_task_list

    specs = args.tasks or ("builtin:linear" if args.suite == "linear" else None)
    if not specs:
        raise SymtuneError(f"the {args.suite} suite needs --tasks")
    if not args.model and not args.export_lmeval:
        raise SymtuneError("give at least one --model (or --export-lmeval DIR)")
    check_outputs({"--out": args.out, "--cache": args.cache, "--export-lmeval": args.export_lmeval},
                  {"task": specs.split(","), "model": args.model, "model cache": str(cache_dir())})
    check_own_folder(args.out, "--out", ("results.json", "cache"), "symtune eval")
    cfg = EvalConfig(
        suite=args.suite, n=args.n, k=args.k, seeds=tuple(range(args.seeds)), fmt=args.format,
        calibrate=not args.no_calibration, generate=args.generate, max_new_tokens=args.max_new_tokens,
        token_budget=args.token_budget, max_prompt_tokens=args.max_prompt_tokens, dtype=args.dtype,
        attn_implementation=args.attn_implementation, allow_seen=args.allow_seen,
    )
    tasks = load_task_list(specs, seed=0)
    if args.export_lmeval:
        from symtune.lmeval_export import export_suite

        conditions, items = build_items(tasks, cfg)
        export_suite(items, conditions, args.export_lmeval, suite=cfg.suite, max_new_tokens=cfg.max_new_tokens)
        print(f"wrote lm-evaluation-harness tasks to {args.export_lmeval}", file=sys.stderr)
    if not args.model:
        return
    results = evaluate(args.model, tasks, cfg, cache_dir=args.cache or Path(args.out) / "cache",
                       task_specs=specs.split(","), progress=sys.stderr.isatty())
    if process_state().is_main_process:
        write_results(results, args.out)
        print(markdown(results))
