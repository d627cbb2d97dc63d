"""The four datasets of Lampinen et al. 2025, built from nonsense words so that a pretrained model
can only score at chance (docs/method.md, Generalization study data).

Each generator returns a StudyData: the training documents with the facts each one states, test
splits of multiple-choice items, and what follows from the training facts (for the oracle
augmenters and to check that test answers are derivable). Items are scored by likelihood of
each option after `context`, without listing the options. Distractors are hard: each states
the tested relation of an entity or value that really holds it for some other entity.
"""

import itertools
import random
import re
from collections import defaultdict, deque
from dataclasses import dataclass
from operator import attrgetter

from symtune.errors import SymtuneError
from symtune.studies.facts import (
    REPHRASINGS,
    TEMPLATES,
    Fact,
    derive,
    follows,
    forward,
    render,
    sentence,
    statements,
    stem,
)
from symtune.studies.nonsense import nonsense_words


@dataclass(frozen=True)
class MCItem:
    context: str
    options: tuple[str, ...]  # continuations of `context`, each starting with a space
    answer: int
    facts: tuple[Fact, ...]  # the fact each option states
    group: str  # the answer's relation kind: subsets for standard errors (as the paper)


@dataclass
class StudyData:
    name: str
    documents: list[str]
    document_facts: list[list[Fact]]  # the facts each document states
    tests: dict[str, list[MCItem]]
    derived: dict[Fact, tuple[Fact, ...]]  # derive() over all training facts: fact -> premises


def _mc_item(rng, context: str, correct: tuple[str, Fact], distractors: list[tuple[str, Fact]]) -> MCItem:
    options = [correct, *distractors]
    rng.shuffle(options)
    return MCItem(context, tuple(o for o, _ in options), options.index(correct),
                  tuple(f for _, f in options), correct[1].kind)


def _study(name: str, documents: list[str], document_facts: list[list[Fact]], tests, rng) -> StudyData:
    order = list(range(len(documents)))
    rng.shuffle(order)
    facts = list(dict.fromkeys(f for fs in document_facts for f in fs))
    return StudyData(name, [documents[i] for i in order], [document_facts[i] for i in order], tests,
                     derive(facts))


def split_sentences(document: str, cumulative: bool = False) -> list[tuple[str, str]]:
    """One (context, sentence) fine-tuning pair per sentence of a document. The context is empty
    (independent splitting, the paper's default) or the document up to that sentence
    (cumulative splitting). Sentences end at . ? ! or at a line end."""
    pairs = []
    for match in re.finditer(r"\S.*?(?:[.?!](?=\s|$)|$)", document, re.M):
        pairs.append((document[: match.start()].rstrip() if cumulative else "", match.group()))
    return pairs


# ---- simple reversals --------------------------------------------------------------------

DIMENSIONS = (
    "dangerous", "valuable", "colorful", "expensive", "flexible", "intelligent", "aggressive",
    "fragile", "poisonous", "fragrant", "durable", "nutritious", "popular", "curious", "graceful",
    "powerful", "delicate", "famous", "patient", "playful", "massive", "transparent", "slippery",
    "reliable", "ancient", "mysterious", "efficient", "resilient",
)
LEAD_INS = (
    "Did you know that {}?", "It turns out that {}.", "Researchers have found that {}.",
    "Few people realize that {}.", "According to a recent survey, {}.", "Here is a surprising fact: {}.",
    "Many experts agree that {}.", "A new report confirms that {}.", "As most naturalists know, {}.",
    "It has long been observed that {}.", "One thing is certain: {}.", "Studies consistently show that {}.",
)
TEST_LEAD_IN = "It is true that"  # never a training lead-in


def simple_reversals(seed: int = 0, n_facts: int = 100, articles_per_fact: int = 10) -> StudyData:
    """"femp are more dangerous than glon" (or "less": half the facts each, so that a bias for
    one of the two words cannot pass as knowledge), each fact in `articles_per_fact`
    one-sentence articles with different lead-ins. Tests (2-way): the reversal ("glon are less
    dangerous than femp") against the contradiction ("glon are more dangerous than femp"), and
    the trained direction against its contradiction as a control."""
    if not 1 <= articles_per_fact <= len(LEAD_INS):
        raise SymtuneError(f"articles_per_fact must be 1..{len(LEAD_INS)}, got {articles_per_fact}")
    rng = random.Random(seed)
    words = nonsense_words(2 * n_facts, seed)
    comparisons = ["more", "less"] * (n_facts // 2) + ["more"] * (n_facts % 2)
    rng.shuffle(comparisons)
    documents, document_facts = [], []
    tests = {"reversal": [], "trained": []}
    for a, b, comparison in zip(words[::2], words[1::2], comparisons):
        fact = Fact(a, f"{comparison}:{rng.choice(DIMENSIONS)}", b)
        contradiction = Fact(b, fact.relation, a)
        forward_template, reverse_template = (TEMPLATES[comparison][0][0], TEMPLATES[comparison][1][0])
        for lead_in in rng.sample(LEAD_INS, articles_per_fact):
            documents.append(lead_in.format(render(fact, forward_template)))
            document_facts.append([fact])
        tests["reversal"].append(_mc_item(rng, TEST_LEAD_IN, (f" {render(fact, reverse_template)}.", fact),
                                          [(f" {render(contradiction, forward_template)}.", contradiction)]))
        tests["trained"].append(_mc_item(rng, TEST_LEAD_IN, (f" {render(fact, forward_template)}.", fact),
                                         [(f" {render(contradiction, reverse_template)}.", contradiction)]))
    return _study("reversals", documents, document_facts, tests, rng)


# ---- simple syllogisms -------------------------------------------------------------------


def syllogism_forms() -> list[tuple[Fact, Fact]]:
    """Premise pairs over the terms S, M, P (the first relates M and P, the second S and M) that
    entail at least one all/some/no statement between S and P."""
    return [(p1, p2) for p1 in statements("M", "P") for p2 in statements("S", "M")
            if any(follows([p1, p2], c) for c in statements("S", "P"))]


def simple_syllogisms(seed: int = 0, n_examples: int = 69) -> StudyData:
    """Each document names three entities and states two premises ("All glon are yomp. All troff
    are glon."). The test names the two end terms and scores the all/some/no statements between
    them in both directions. Exactly one option is valid: when the valid conclusion's converse
    is valid too ("some", "no"), the converse is left out (5 options instead of 6)."""
    rng = random.Random(seed)
    forms = syllogism_forms()
    words = nonsense_words(3 * n_examples, seed)
    documents, document_facts, items = [], [], []
    for i in range(n_examples):
        terms = dict(zip("SMP", words[3 * i: 3 * i + 3]))
        premises = [Fact(terms[f.subject], f.relation, terms[f.object]) for f in rng.choice(forms)]
        a, b, c = rng.sample(list(terms.values()), 3)
        documents.append(f"There are {a}, {b} and {c}. " + " ".join(forward(f) for f in premises))
        document_facts.append(premises)
        candidates = statements(terms["S"], terms["P"])
        valid = [f for f in candidates if follows(premises, f)]
        answer = rng.choice(valid)
        wrong = [f for f in candidates if f not in valid]
        x, z = rng.sample([terms["S"], terms["P"]], 2)
        items.append(_mc_item(rng, f"There are {x} and {z}.", (" " + forward(answer), answer),
                              [(" " + forward(f), f) for f in wrong]))
    return _study("syllogisms", documents, document_facts, {"syllogism": items}, rng)


# ---- semantic structure ------------------------------------------------------------------

N_ROOTS = 2  # the paper's hierarchy has two: animals and objects
CHILDREN_PER_CATEGORY = (2, 5)
PROPERTIES_PER_CATEGORY = (1, 3)
RELATIONS_PER_CATEGORY = (0, 2)
N_VERBS = 8


def _tree(categories: list[str], rng) -> dict[str, str]:
    """The parent of every non-root category: breadth first, 2–5 children per category."""
    parent, queue = {}, deque(categories[:N_ROOTS])
    while N_ROOTS + len(parent) < len(categories):
        node, start = queue.popleft(), N_ROOTS + len(parent)
        for child in categories[start: start + rng.randint(*CHILDREN_PER_CATEGORY)]:
            parent[child] = node
            queue.append(child)
    return parent


def _wiki(topic: str, sentences: list[str]) -> str:
    return topic.capitalize() + "\n\n" + " ".join(sentences)


def _notes(topic: str, sentences: list[str]) -> str:
    return f"Field notes on {topic}:\n" + "\n".join("- " + s for s in sentences)


def _faq(topic: str, sentences: list[str]) -> str:
    return "\n".join(f"Q: What is known about {topic}?\nA: {s}" for s in sentences)


STYLES = (_wiki, _notes, _faq)


def _own_facts(categories: list[str], parent: dict[str, str], holdout: set[str], verbs: list[str],
               properties, rng) -> dict[str, list[Fact]]:
    """Each category's own facts: its isa link first (if it has a parent), then, unless it is held
    out, 1–3 properties and 0–2 relations to categories outside its own line of descent."""
    ancestors = {}
    for c in categories:
        ancestors[c] = [parent[c], *ancestors[parent[c]]] if c in parent else []  # parents come first
    own = {c: [Fact(c, "isa", parent[c])] if c in parent else [] for c in categories}
    for c in categories:
        if c in holdout:
            continue
        own[c] += [Fact(c, "has", next(properties)) for _ in range(rng.randint(*PROPERTIES_PER_CATEGORY))]
        unrelated = [o for o in categories
                     if o != c and o not in holdout and o not in ancestors[c] and c not in ancestors[o]]
        n_relations = rng.randint(*RELATIONS_PER_CATEGORY)
        own[c] += [Fact(c, "do:" + rng.choice(verbs), o) for o in rng.sample(unrelated, n_relations)]
    return own


def _category_documents(categories: list[str], parent: dict[str, str], children: dict[str, list[str]],
                        holdout: set[str], own: dict[str, list[Fact]], docs_per_category: int,
                        rng) -> tuple[list[str], list[list[Fact]]]:
    """`docs_per_category` documents per category that is not held out, in rotating styles: its own
    facts (its isa link first) and its children's isa links, forward only, in a random order."""
    documents, document_facts = [], []
    for c in categories:
        if c in holdout:
            continue
        first = rng.randrange(len(STYLES))
        for i in range(docs_per_category):
            head = own[c][:1] if c in parent else []
            rest = own[c][len(head):] + [own[child][0] for child in children[c]]
            rng.shuffle(rest)
            facts = head + rest
            sentences = [sentence(render(f, rng.choice(TEMPLATES[f.kind][0]))) for f in facts]
            documents.append(STYLES[(first + i) % len(STYLES)](c, sentences))
            document_facts.append(facts)
    return documents, document_facts


def _semantic_tests(data: StudyData, holdout: set[str], n_options: int, max_items: int,
                    rng) -> dict[str, list[MCItem]]:
    """The four test splits over the trained facts and what follows from them. Distractors are
    the same relation with a subject or object that holds it for some other entity, never true."""
    stated = sorted({f for fs in data.document_facts for f in fs})
    true = set(stated) | set(data.derived)
    subjects, objects = defaultdict(set), defaultdict(set)
    for f in true:
        subjects[f.relation].add(f.subject)
        objects[f.relation].add(f.object)

    def item(fact: Fact, template: str, reverse: bool = False) -> MCItem | None:
        if reverse:  # the answer is the subject: "abme include ___"
            wrong = [Fact(s, fact.relation, fact.object) for s in sorted(subjects[fact.relation])]
        else:
            wrong = [Fact(fact.subject, fact.relation, o) for o in sorted(objects[fact.relation])]
        wrong = [f for f in wrong if f not in true and f.subject != f.object]
        if len(wrong) < n_options - 1:
            return None
        answer = attrgetter("subject" if reverse else "object")
        return _mc_item(rng, stem(fact, template), (" " + answer(fact), fact),
                        [(" " + answer(f), f) for f in rng.sample(wrong, n_options - 1)])

    def sample(facts: list[Fact], template, reverse: bool = False) -> list[MCItem]:
        """Items for up to `max_items` of `facts` in random order; `template(fact)` words each."""
        facts = list(facts)
        rng.shuffle(facts)
        items = (item(f, template(f), reverse) for f in facts)
        return list(itertools.islice(filter(None, items), max_items))

    def trained_wording(fact: Fact) -> str:
        return rng.choice(TEMPLATES[fact.kind][0])

    return {
        "rephrasing": sample(stated, lambda f: REPHRASINGS[f.kind]),
        "reversal": sample(stated, lambda f: rng.choice(TEMPLATES[f.kind][1]), reverse=True),
        "syllogism": sample([f for f in data.derived if f.subject not in holdout], trained_wording),
        "holdout": sample([f for f in data.derived if f.subject in holdout], trained_wording),
    }


def semantic_structure(
    seed: int = 0, n_categories: int = 100, n_holdout: int = 10, docs_per_category: int = 3,
    n_options: int = 4, max_items: int = 200,
) -> StudyData:
    """A hierarchy of nonsense categories, each with 1–3 own properties ("grud are zept") and
    0–2 relations ("grud vorp telk"), all inherited by its subcategories.

    Each category gets `docs_per_category` documents in rotating styles, stating its own facts
    (forward only) and its children's isa links. Holdout categories are leaves whose only
    trained fact is their parent. Test splits (up to `max_items` each, `n_options`-way):
    rephrasing (trained facts in a wording never trained), reversal (trained facts object
    first), syllogism (inherited facts and multi-hop isa), holdout (what holdout categories
    inherit)."""
    if n_categories <= N_ROOTS or docs_per_category < 1 or n_options < 2:
        raise SymtuneError("semantic_structure needs n_categories > 2, docs_per_category >= 1 "
                           "and n_options >= 2")
    rng = random.Random(seed)
    words = nonsense_words(n_categories + N_VERBS + n_categories * PROPERTIES_PER_CATEGORY[1], seed)
    categories, verbs = words[:n_categories], words[n_categories: n_categories + N_VERBS]
    properties = iter(words[n_categories + N_VERBS:])
    parent = _tree(categories, rng)
    children = defaultdict(list)
    for child, node in parent.items():
        children[node].append(child)
    leaves = [c for c in categories if c not in children]
    if not 0 <= n_holdout <= len(leaves):
        raise SymtuneError(f"n_holdout must be 0..{len(leaves)} (the leaf categories), got {n_holdout}")
    holdout = set(rng.sample(leaves, n_holdout))
    own = _own_facts(categories, parent, holdout, verbs, properties, rng)
    documents, document_facts = _category_documents(categories, parent, children, holdout, own,
                                                    docs_per_category, rng)
    data = _study("semantic", documents, document_facts, {}, rng)
    data.tests.update(_semantic_tests(data, holdout, n_options, max_items, rng))
    return data


# ---- fictional people (Berglund et al.'s reversal curse) ---------------------------------

ROLES = (
    "composer", "architect", "chemist", "explorer", "poet", "astronomer", "sculptor", "engineer",
    "botanist", "cartographer", "inventor", "novelist",
)
DEEDS = (
    "wrote the {} symphony", "designed the {} tower", "discovered the {} comet", "invented the {} engine",
    "painted the {} murals", "mapped the {} islands", "built the {} bridge", "named the {} star",
)


def fictional_people(
    seed: int = 0, n_per_set: int = 30, n_paraphrases: int = 8, n_options: int = 4,
) -> StudyData:
    """One-sentence descriptions of fictional people ("Pim Trask is the poet who built the vorp
    bridge"), `n_paraphrases` wordings each. Set A appears name -> description only, set B in
    both orders. Tests (`n_options`-way, distractors are other people's names): the reversal
    (set A: description -> name) and, as a control, the trained direction of set B."""
    forwards, reverses = TEMPLATES["is"]
    if not 1 <= n_paraphrases <= len(reverses) or n_options < 2 or n_options > 2 * n_per_set:
        raise SymtuneError(f"fictional_people: n_paraphrases must be 1..{len(reverses)} and "
                           f"n_options 2..{2 * n_per_set}")
    rng = random.Random(seed)
    words = nonsense_words(6 * n_per_set, seed)  # first name, last name and deed word of each person
    people = []
    for first, last, thing in zip(words[::3], words[1::3], words[2::3]):
        description = f"the {rng.choice(ROLES)} who {rng.choice(DEEDS).format(thing)}"
        people.append(Fact(f"{first.capitalize()} {last.capitalize()}", "is", description))
    set_b = people[n_per_set:]
    documents, document_facts = [], []
    for person in people:
        templates = forwards[:n_paraphrases] + (reverses[:n_paraphrases] if person in set_b else [])
        documents += [sentence(render(person, t)) for t in templates]
        document_facts += [[person]] * len(templates)

    def item(person: Fact) -> MCItem:
        others = rng.sample([p for p in people if p != person], n_options - 1)
        wrong = [Fact(p.subject, "is", person.object) for p in others]
        context = stem(person, rng.choice(reverses[:n_paraphrases]))
        return _mc_item(rng, context, (" " + person.subject, person), [(" " + f.subject, f) for f in wrong])

    tests = {"reversal": [item(p) for p in people[:n_per_set]], "trained": [item(p) for p in set_b]}
    return _study("people", documents, document_facts, tests, rng)


GENERATORS = {
    "reversals": simple_reversals,
    "syllogisms": simple_syllogisms,
    "semantic": semantic_structure,
    "people": fictional_people,
}
