"""The protocols of Lampinen et al. 2025 on the study data, and the study itself.

Protocols: the pretrained model, ICL (training documents in the prompt), plain fine-tuning on
the documents, and fine-tuning on the documents plus augmentations, local (rephrasings and
reversals of each sentence) or global (inferences linking a document to the rest), written by
the oracle (facts.py) or by the model itself prompted with a few examples. Every protocol is
scored the same way: the summed log-probability of each option after the item's context, the
options never shown (multiple-choice likelihood scoring).

Decisions (docs/method.md): documents are trained as plain text after DOC_START; ICL prompts
hold the documents that state the answer's premises plus random others up to a token budget;
the four datasets are tuned together, one run per protocol and seed, each dataset drawn with
its own seed so that they share (almost) no nonsense words.
"""

import random
import re
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from symtune.config import knob
from symtune.errors import SymtuneError
from symtune.evaluate import versions
from symtune.io import read_jsonl, write_json
from symtune.stats import mean_se
from symtune.studies.facts import REPHRASINGS, TEMPLATES, Fact, global_augment, local_augment, render
from symtune.studies.generalization_data import GENERATORS, MCItem, StudyData, split_sentences
from symtune.studies.runs import (
    Clock,
    cached,
    drop_weights,
    load_scored,
    scoring_record,
    study_recipe,
    tuned,
    write_mixture,
)
from symtune.train.recipe import DEFAULT_RECIPE

DOC_START = "\n"  # every training row and test context starts here: a plain-text document start
SEPARATOR = "\n\n"  # between documents in an ICL prompt
SPLITTINGS = ("independent", "cumulative", "none")
AUGMENTERS = ("oracle", "self")
SIZES = {  # generator arguments per dataset; "paper" is the paper's scale (hours of tuning on a CPU)
    "tiny": {"reversals": {"n_facts": 12, "articles_per_fact": 2}, "syllogisms": {"n_examples": 12},
             "semantic": {"n_categories": 12, "n_holdout": 2, "docs_per_category": 1},
             "people": {"n_per_set": 8, "n_paraphrases": 2}},
    "small": {"reversals": {"n_facts": 30, "articles_per_fact": 3}, "syllogisms": {"n_examples": 24},
              "semantic": {"n_categories": 24, "n_holdout": 3, "docs_per_category": 2},
              "people": {"n_per_set": 12, "n_paraphrases": 3}},
    "paper": {name: {} for name in GENERATORS},
}


def unique(items) -> list:
    return list(dict.fromkeys(items))


def study_datasets(seed: int, size: str = "tiny") -> dict[str, StudyData]:
    """The four datasets of one study seed, each generated with its own seed."""
    if size not in SIZES:
        raise SymtuneError(f"unknown study size {size!r}; choose one of {', '.join(SIZES)}")
    return {name: generate(seed=len(GENERATORS) * seed + i, **SIZES[size][name])
            for i, (name, generate) in enumerate(GENERATORS.items())}


# ---- fine-tuning rows ----------------------------------------------------------------------


def document_pairs(documents: list[str], splitting: str = "independent") -> list[tuple[str, str]]:
    """(prompt, completion) per training example: one per sentence (independent: the sentence
    alone; cumulative: after the document's preceding sentences) or one per whole document."""
    if splitting not in SPLITTINGS:
        raise SymtuneError(f"unknown sentence splitting {splitting!r}; choose one of {', '.join(SPLITTINGS)}")
    if splitting == "none":
        return [(DOC_START, d) for d in documents]
    return [(DOC_START + context, (" " if context else "") + sentence)
            for d in documents for context, sentence in split_sentences(d, splitting == "cumulative")]


def training_rows(data: StudyData, augmentations: list[str], splitting: str, seed: int) -> list[dict]:
    """Mixture rows: the documents (split as asked), then each augmentation sentence on its own."""
    pairs = [("document", p, c) for p, c in document_pairs(data.documents, splitting)]
    pairs += [("augmentation", DOC_START, sentence) for sentence in augmentations]
    return [{"id": f"{data.name}-{i:06d}", "task": data.name, "kind": kind, "format": "text", "seed": seed,
             "k": 0, "prompt": prompt, "completion": completion, "labels": [], "mapping": {}}
            for i, (kind, prompt, completion) in enumerate(pairs)]


def oracle_augmentations(data: StudyData, kind: str) -> list[str]:
    """Local: every training wording of every stated fact, forward and reversed. Global: per
    distinct document, the inferences linking it to the rest of the training set."""
    if kind == "local":
        facts = unique(f for facts in data.document_facts for f in facts)
        return unique(s for f in facts for s in local_augment(f))
    documents = unique(tuple(facts) for facts in data.document_facts)
    return unique(s for facts in documents for s in global_augment(list(facts), data.derived))


# ---- self-augmentation: the model writes the augmentations ---------------------------------

LOCAL_PROMPT = """Rewrite each statement in other words, then reverse it.

Statement: Robins are a type of bird.
Rephrasing: Robins are a kind of bird.
Reversal: Birds include robins.

Statement: Lions are more dangerous than cats.
Rephrasing: Compared with cats, lions are more dangerous.
Reversal: Cats are less dangerous than lions.

Statement: Marie Curie is the chemist who discovered radium.
Rephrasing: Marie Curie is best known as the chemist who discovered radium.
Reversal: The chemist who discovered radium is Marie Curie.

Statement: {statement}
Rephrasing:"""

GLOBAL_PROMPT = """Read the facts and the document, then list what follows from the document together with the facts.

Facts:
Sparrows are a type of bird. Birds are a type of animal. Eagles hunt sparrows.
Document:
Birds are a type of animal. Birds have feathers.
Inferences:
Animals include birds.
Sparrows have feathers.
Sparrows are a type of animal.

Facts:
{facts}
Document:
{document}
Inferences:
"""
LABEL = re.compile(r"^\s*(?:[-*•]|\d+[.)]|Rephrasing:|Reversal:|Inferences?:)\s*")


def parse_augmentations(text: str) -> list[str]:
    """The statements of a generated augmentation, one per line, labels and list marks removed;
    a line that is not a whole sentence of three words or more is dropped."""
    lines = []
    for line in text.splitlines():
        line = LABEL.sub("", line).strip()
        if len(line.split()) >= 3 and line.endswith("."):
            lines.append(line[0].upper() + line[1:])
    return unique(lines)


def statements_of(data: StudyData) -> list[str]:
    """The distinct sentences of the documents that can state a fact (list and answer marks removed)."""
    sentences = (re.sub(r"^(?:- |A: )", "", s) for d in data.documents for _, s in split_sentences(d))
    return unique(s for s in sentences if s.endswith("."))


def self_augmentation_prompts(data: StudyData, kind: str, tokenizer, budget: int, seed: int) -> list[str]:
    """One prompt per sentence (local) or per distinct document, with the documents sharing a word
    with it as the facts in context, up to `budget` tokens (global)."""
    if kind == "local":
        return [LOCAL_PROMPT.format(statement=s) for s in statements_of(data)]
    rng = random.Random(f"{seed}/{data.name}/global")
    sizes = document_sizes(data.documents, tokenizer)
    words = [set(re.findall(r"\w+", d.lower())) for d in data.documents]
    first = {tuple(facts): i for i, facts in reversed(list(enumerate(data.document_facts)))}
    prompts = []
    for i in sorted(first.values()):
        entities = {t.lower() for f in data.document_facts[i] for t in (f.subject, f.object)}
        related = [j for j in range(len(data.documents)) if j != i and entities & words[j]]
        rng.shuffle(related)
        chosen = select_documents(related, sizes, budget, rng, exclude=i)
        facts = " ".join(data.documents[j].replace("\n", " ") for j in chosen)
        prompts.append(GLOBAL_PROMPT.format(facts=facts, document=data.documents[i]))
    return prompts


def self_augmentations(model, tokenizer, data: StudyData, kind: str, budget: int, seed: int,
                       token_budget: int = 4096) -> list[str]:
    """The augmentations the model writes itself (greedy), parsed into sentences."""
    from symtune.generation import generate_until  # local: it pulls in torch; building the study's data does not

    prompts = self_augmentation_prompts(data, kind, tokenizer, budget, seed)
    outputs = generate_until(model, tokenizer, prompts, stop="\n\n", max_new_tokens=40 if kind == "local" else 64,
                             token_budget=token_budget)
    return unique(line for out in outputs for line in parse_augmentations(out))


def fact_wordings(data: StudyData) -> dict[str, Fact]:
    """Every wording (any template, lower case, no final period) of every true fact."""
    true = unique([f for facts in data.document_facts for f in facts] + list(data.derived))
    wordings = {}
    for fact in true:
        forwards, reverses = TEMPLATES[fact.kind]
        for template in forwards + reverses + ([REPHRASINGS[fact.kind]] if fact.kind in REPHRASINGS else []):
            wordings[render(fact, template).lower()] = fact
    return wordings


def augmentation_quality(data: StudyData, sentences: list[str]) -> dict:
    """How many sentences an augmenter wrote, the share that word a true fact exactly, and the
    share that word a true fact in a wording no training document contains."""
    wordings = fact_wordings(data)
    training = "\n".join(data.documents).lower()
    keys = [s.rstrip(".").lower() for s in sentences]
    true = [key for key in keys if key in wordings]
    share = lambda n: n / len(sentences) if sentences else 0.0  # noqa: E731
    return {"sentences": len(sentences), "true": share(len(true)),
            "true_new": share(sum(key not in training for key in true))}


# ---- ICL prompts and multiple-choice scoring ---------------------------------------------


def document_sizes(documents: list[str], tokenizer) -> list[int]:
    """Tokens each document takes in an ICL prompt, with the separator (counted as it tokenizes
    before more text)."""
    separator = len(tokenizer(SEPARATOR + "x").input_ids) - len(tokenizer("x").input_ids)
    return [len(ids) + separator for ids in tokenizer(documents).input_ids]


def select_documents(order: list[int], sizes: list[int], budget: int, rng: random.Random, exclude=None) -> list[int]:
    """Documents in `order` first, then the others at random, each taken if it still fits in
    `budget` tokens; returned shuffled, so position tells nothing."""
    rest = [i for i in range(len(sizes)) if i not in set(order) and i != exclude]
    rng.shuffle(rest)
    chosen, used = [], 0
    for i in [*order, *rest]:
        if used + sizes[i] <= budget:
            chosen.append(i)
            used += sizes[i]
    rng.shuffle(chosen)
    return chosen


def icl_contexts(data: StudyData, items: list[MCItem], tokenizer, budget: int, seed: int) -> list[str]:
    """Each item's context after training documents that fit in `budget` tokens: one document
    stating each premise of the answer (the paper puts all documents in the prompt), then
    random others."""
    rng = random.Random(f"{seed}/{data.name}/icl")
    sizes = document_sizes(data.documents, tokenizer)
    budget -= len(tokenizer(DOC_START).input_ids)
    stating = defaultdict(list)
    for i, facts in enumerate(data.document_facts):
        for f in facts:
            stating[f].append(i)
    contexts = []
    for item in items:
        answer = item.facts[item.answer]
        needed = unique(rng.choice(stating[p]) for p in data.derived.get(answer, (answer,)))
        chosen = select_documents(needed, sizes, budget, rng)
        contexts.append(DOC_START + "".join(data.documents[i] + SEPARATOR for i in chosen) + item.context)
    return contexts


def mc_predictions(model, tokenizer, contexts: list[str], items: list[MCItem], token_budget: int = 4096) -> list[int]:
    """The option with the highest summed log-probability after each context."""
    from symtune.scoring import Request, score_requests  # local: keeps torch out, as above

    scores = score_requests(model, tokenizer, [Request(c, item.options) for c, item in zip(contexts, items)],
                            token_budget=token_budget)
    return [max(range(len(s.logprobs)), key=s.logprobs.__getitem__) for s in scores]


# ---- the study -----------------------------------------------------------------------------


@dataclass
class GeneralizationConfig:
    model: str = knob("smollm2-135m-instruct", "embedded name, model folder, .gguf or hub id")
    size: str = knob("tiny", f"dataset size: {', '.join(SIZES)}")
    seeds: int = knob(3, "study seeds, new data and tuning runs each", minimum=1)
    steps: int = knob(100, "tuning steps of every fine-tuning run", minimum=1)
    recipe: str = knob(DEFAULT_RECIPE, "shipped recipe name or YAML file")
    overrides: list[str] = knob([], "override a recipe key: KEY=VALUE (repeatable)")
    splitting: str = knob("independent", f"sentence splitting: {', '.join(SPLITTINGS)}")
    augmenters: tuple[str, ...] = knob(AUGMENTERS, f"augmenters, comma-separated: {', '.join(AUGMENTERS)}")
    icl_tokens: int = knob(384, "document tokens per ICL prompt", minimum=1)
    max_items: int = knob(24, "test items per split", minimum=1)
    token_budget: int = knob(4096, "padded tokens per scoring / generation pass", minimum=1)
    keep_models: bool = knob(False, "keep the tuned weights (deleted once scored)")


def protocols(cfg: GeneralizationConfig) -> dict[str, str]:
    """Protocol name -> column heading."""
    names = {"pretrained": "pretrained", "icl": "ICL", "ft": "FT"}
    for augmenter in cfg.augmenters:
        suffix = "" if augmenter == "oracle" else " (self)"
        names[f"ft_local_{augmenter}"] = "FT+local" + suffix
        names[f"ft_global_{augmenter}"] = "FT+global" + suffix
    return names


def split_items(datasets: dict[str, StudyData], max_items: int) -> dict[str, dict[str, list[MCItem]]]:
    return {name: {split: items[:max_items] for split, items in data.tests.items()} for name, data in datasets.items()}


def score_protocol(model, tokenizer, datasets, items, contexts_of, cfg) -> dict:
    """{dataset: {split: [1 if correct else 0, ...]}} with contexts_of(data, items) as contexts."""
    out = {}
    for name, splits in items.items():
        out[name] = {}
        for split, its in splits.items():
            predicted = mc_predictions(model, tokenizer, contexts_of(datasets[name], its), its, cfg.token_budget)
            out[name][split] = [int(p == item.answer) for p, item in zip(predicted, its)]
    return out


def run_seed(cfg: GeneralizationConfig, seed: int, out: Path, clock: Clock) -> dict:
    """Every protocol's 0/1 scores for one seed: {protocol: {dataset: {split: [...]}}}, plus the
    augmentations' quality and each tuning run's summary."""
    datasets = study_datasets(seed, cfg.size)
    items = split_items(datasets, cfg.max_items)
    plain = lambda data, its: [DOC_START + item.context for item in its]  # noqa: E731
    model, tokenizer = load_scored(cfg.model)
    scores = {"pretrained": cached(out / "pretrained.json",
                                   lambda: score_protocol(model, tokenizer, datasets, items, plain, cfg))}
    clock.say(f"seed {seed}: pretrained scored")
    icl = lambda data, its: icl_contexts(data, its, tokenizer, cfg.icl_tokens, seed)  # noqa: E731
    scores["icl"] = cached(out / "icl.json", lambda: score_protocol(model, tokenizer, datasets, items, icl, cfg))
    clock.say(f"seed {seed}: ICL scored")

    augmentations = {f"{kind}_oracle": {name: oracle_augmentations(data, kind) for name, data in datasets.items()}
                     for kind in ("local", "global")}
    if "self" in cfg.augmenters:
        for kind in ("local", "global"):
            augmentations[f"{kind}_self"] = cached(out / f"augmentations_{kind}_self.json", lambda: {
                name: self_augmentations(model, tokenizer, data, kind, cfg.icl_tokens, seed, cfg.token_budget)
                for name, data in datasets.items()})
            clock.say(f"seed {seed}: self-augmentation ({kind}) written")
    model = None  # frees the weights before the tuning runs
    quality = {key: {name: augmentation_quality(datasets[name], sentences) for name, sentences in sets.items()}
               for key, sets in augmentations.items()}

    runs = {}
    for protocol in protocols(cfg):
        if not protocol.startswith("ft"):
            continue
        folder = out / protocol
        extra = augmentations.get(protocol.removeprefix("ft_"), {})
        rows = [row for name, data in datasets.items()
                for row in training_rows(data, extra.get(name, []), cfg.splitting, seed)]

        def tune_and_score():
            write_mixture(folder / "data", rows, seed, {"splitting": cfg.splitting, "protocol": protocol})
            recipe = study_recipe(cfg.recipe, [f"seed={seed}", *cfg.overrides], cfg.steps)
            tuned(cfg.model, folder / "data", folder / "model", recipe)
            net, tok = load_scored(str(folder / "model"))
            result = score_protocol(net, tok, datasets, items, plain, cfg)
            if not cfg.keep_models:
                drop_weights(folder / "model")
            return result

        scores[protocol] = cached(folder / "scores.json", tune_and_score)
        log = read_jsonl(folder / "model" / "train_log.jsonl")
        runs[protocol] = {"rows": len(rows), "steps": len(log),
                          "final_loss": sum(r["loss"] for r in log[-10:]) / max(1, len(log[-10:]))}
        clock.say(f"seed {seed}: {protocol} tuned ({len(rows)} rows) and scored")
    chance = {name: {split: sum(1 / len(i.options) for i in its) / len(its) for split, its in splits.items() if its}
              for name, splits in items.items()}
    return {"scores": scores, "augmentation": quality, "runs": runs, "chance": chance,
            "items": {name: {split: len(its) for split, its in splits.items()} for name, splits in items.items()}}


def summarize(per_seed: list[dict], cfg: GeneralizationConfig) -> dict:
    """Accuracy per dataset, split and protocol: mean and standard error over seeds."""

    table = defaultdict(lambda: defaultdict(dict))
    first = per_seed[0]
    for protocol in protocols(cfg):
        for name, splits in first["scores"][protocol].items():
            for split, values in splits.items():
                if values:
                    accuracies = [sum(s["scores"][protocol][name][split]) / len(values) for s in per_seed]
                    table[name][split][protocol] = {**mean_se(accuracies), "per_seed": accuracies}
    return {"accuracy": table, "chance": first["chance"], "items": first["items"]}


def run_generalization(cfg: GeneralizationConfig, out, command: str = "") -> dict:
    """The whole study; writes out/results.json (and resumes from out/ when re-run)."""
    if cfg.splitting not in SPLITTINGS:
        raise SymtuneError(f"unknown sentence splitting {cfg.splitting!r}; choose one of {', '.join(SPLITTINGS)}")
    unknown = set(cfg.augmenters) - set(AUGMENTERS)
    if unknown or cfg.seeds < 1 or cfg.steps < 1 or cfg.max_items < 1:
        raise SymtuneError(f"augmenters must be among {', '.join(AUGMENTERS)}; seeds, steps and max_items at least 1")
    study_datasets(0, cfg.size)  # refuses an unknown size before any model loads
    out, clock = Path(out), Clock()
    per_seed = [run_seed(cfg, seed, out / f"seed{seed}", clock) for seed in range(cfg.seeds)]
    results = {
        "study": "generalization", "command": command, "seconds": round(clock.seconds(), 1), "config": asdict(cfg),
        "versions": versions(), "scoring": scoring_record(), "protocols": protocols(cfg), **summarize(per_seed, cfg),
        "augmentation": [s["augmentation"] for s in per_seed], "runs": [s["runs"] for s in per_seed],
        "correct": [s["scores"] for s in per_seed],  # per seed, the 0/1 per test item the report pairs
    }
    write_json(out / "results.json", results)
    print(f"generalization study -> {out / 'results.json'}", file=sys.stderr)
    return results
