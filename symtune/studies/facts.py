"""Facts of the generalization study: how they are worded, what follows from them, and the
oracle augmenters that spend "train-time inference" on them (Lampinen et al. 2025; docs/method.md,
Generalization study protocols).

A fact is a (subject, relation, object) triple. Relations:
  isa          "grud are a type of abme"          has        "grud are zept"
  do:<verb>    "grud vorp telk"                   more:<adj> "femp are more dangerous than glon"
                                                  less:<adj> "femp are less dangerous than glon"
  all/some/no  "all glon are yomp"                is         "Pim Trask is the poet who ..."
Every relation has forward templates (subject first) and reverse templates (object first).
Forward templates of isa/has/do/is end with the object and reverse ones with the subject, so a
test can stop right before the answer.
"""

import functools
import itertools
from collections import defaultdict
from dataclasses import dataclass

from symtune.errors import SymtuneError


@dataclass(frozen=True, order=True)
class Fact:
    subject: str
    relation: str
    object: str

    @property
    def kind(self) -> str:
        return self.relation.partition(":")[0]

    @property
    def word(self) -> str:
        """The verb of a do: relation or the adjective of a more: or less: relation."""
        return self.relation.partition(":")[2]


TEMPLATES = {  # kind -> (forward templates, reverse templates); the first of each is canonical
    "isa": (
        ["{s} are a type of {o}", "{s} are a kind of {o}", "{s} are classified as {o}",
         "{s} are one of the many kinds of {o}"],
        ["{o} include {s}", "among the kinds of {o} are {s}", "one type of {o} is {s}"],
    ),
    "has": (
        ["{s} are {o}", "{s} are typically {o}", "{s} are known to be {o}",
         "it is well known that {s} are {o}"],
        ["{o} things include {s}", "among the {o} kinds of things are {s}", "one kind of {o} thing is {s}"],
    ),
    "do": (
        ["{s} {w} {o}", "{s} often {w} {o}", "{s} are known to {w} {o}", "it is said that {s} {w} {o}"],
        ["{o} are {p} by {s}", "{o} are commonly {p} by {s}", "{o} get {p} by {s}"],
    ),
    "more": (
        ["{s} are more {w} than {o}", "compared with {o}, {s} are more {w}"],
        ["{o} are less {w} than {s}", "compared with {s}, {o} are less {w}"],
    ),
    "less": (
        ["{s} are less {w} than {o}", "compared with {o}, {s} are less {w}"],
        ["{o} are more {w} than {s}", "compared with {s}, {o} are more {w}"],
    ),
    # Boolean semantics: "all X are Y" has no valid converse; "some" and "no" convert.
    "all": (["all {s} are {o}", "every {s} is {o}"], []),
    "some": (["some {s} are {o}", "there are {s} that are {o}"],
             ["some {o} are {s}", "there are {o} that are {s}"]),
    "no": (["no {s} are {o}", "none of the {s} are {o}"], ["no {o} are {s}", "none of the {o} are {s}"]),
    "is": (
        ["{s} is {o}", "{s} is best known as {o}", "people remember {s} as {o}", "few know that {s} is {o}",
         "{s} became famous as {o}", "{s} is widely recognized as {o}", "{s}, as many know, is {o}",
         "the name {s} belongs to {o}"],
        ["{o} is {s}", "{o} goes by the name {s}", "known as {o}, this person is called {s}",
         "if you look up {o}, you will find {s}", "historians refer to {o} as {s}", "{o}? That would be {s}",
         "the person who is {o} is named {s}", "ask anyone about {o}, and they will name {s}"],
    ),
}
# Wordings never used in training or augmentation: the "rephrasing" test split uses them.
REPHRASINGS = {"isa": "{s} are a subgroup of {o}", "has": "{s} tend to be {o}", "do": "{s} regularly {w} {o}"}
QUANTIFIERS = ("all", "some", "no")


def render(fact: Fact, template: str) -> str:
    """The clause `template` states for `fact` (lower-case start, no final period)."""
    verb = fact.word
    participle = verb + ("d" if verb.endswith("e") else "ed")
    return template.format(s=fact.subject, o=fact.object, w=verb, p=participle)


def sentence(clause: str) -> str:
    return clause[0].upper() + clause[1:] + "."


def stem(fact: Fact, template: str) -> str:
    """The sentence start before the template's last slot (the answer), capitalised."""
    clause = render(fact, template[: template.rindex("{")].rstrip())
    return clause[0].upper() + clause[1:]


def forward(fact: Fact) -> str:
    """The canonical forward sentence of a fact."""
    return sentence(render(fact, TEMPLATES[fact.kind][0][0]))


# ---- what follows from a set of facts -----------------------------------------------------


def _holds(fact: Fact, inhabited: list[frozenset]) -> bool:
    """Whether a quantified fact is true in a model given by its inhabited Venn regions."""
    if fact.kind == "all":
        return not any(fact.subject in r and fact.object not in r for r in inhabited)
    overlap = any(fact.subject in r and fact.object in r for r in inhabited)
    return overlap if fact.kind == "some" else not overlap


def follows(premises: list[Fact], conclusion: Fact) -> bool:
    """Whether all/some/no `premises` entail `conclusion` (Boolean semantics: no existential
    import), by checking every model over the Venn regions of the terms involved."""
    facts = [*premises, conclusion]
    if any(f.kind not in QUANTIFIERS for f in facts):
        raise SymtuneError(f"follows() takes all/some/no facts, got {facts}")
    terms = list(dict.fromkeys(t for f in facts for t in (f.subject, f.object)))
    # validity depends only on the pattern of quantifiers and term positions: cache on that
    pattern = tuple(Fact(str(terms.index(f.subject)), f.relation, str(terms.index(f.object))) for f in facts)
    return _follows(pattern)


@functools.cache
def _follows(facts: tuple[Fact, ...]) -> bool:
    *premises, conclusion = facts
    terms = sorted({t for f in facts for t in (f.subject, f.object)})
    regions = [frozenset(t for t, bit in zip(terms, bits) if bit)
               for bits in itertools.product((0, 1), repeat=len(terms))]
    for mask in range(2 ** len(regions)):
        inhabited = [r for i, r in enumerate(regions) if mask >> i & 1]
        if all(_holds(p, inhabited) for p in premises) and not _holds(conclusion, inhabited):
            return False
    return True


def statements(x: str, z: str) -> list[Fact]:
    """The six all/some/no statements between two terms, both directions."""
    return [Fact(a, q, b) for q in QUANTIFIERS for a, b in ((x, z), (z, x))]


def derive(facts: list[Fact]) -> dict[Fact, tuple[Fact, ...]]:
    """Every fact that follows from `facts` without being one of them, with the premises it
    follows from: categories inherit the isa links, properties and relations of their
    ancestors; two all/some/no facts sharing one term give syllogistic conclusions."""
    stated = set(facts)
    derived = {}

    def add(fact, premises):
        if fact not in stated and fact.subject != fact.object:
            derived.setdefault(fact, tuple(premises))

    parent = {f.subject: f for f in facts if f.kind == "isa"}
    own = defaultdict(list)
    for f in facts:
        if f.kind in ("has", "do"):
            own[f.subject].append(f)
    for category in dict.fromkeys(f.subject for f in facts):
        links, ancestor = [], category  # links: the isa facts from `category` up to `ancestor`
        while ancestor in parent and len(links) < len(parent):  # the bound stops isa cycles
            links.append(parent[ancestor])
            ancestor = parent[ancestor].object
            if len(links) > 1:
                add(Fact(category, "isa", ancestor), links)
            for f in own[ancestor]:
                add(Fact(category, f.relation, f.object), [*links, f])

    quantified = [f for f in facts if f.kind in QUANTIFIERS]
    for f1, f2 in itertools.combinations(quantified, 2):
        shared = {f1.subject, f1.object} & {f2.subject, f2.object}
        if len(shared) == 1:
            (x,) = {f1.subject, f1.object} - shared
            (z,) = {f2.subject, f2.object} - shared
            for conclusion in statements(x, z):
                if follows([f1, f2], conclusion):
                    add(conclusion, (f1, f2))
    return derived


# ---- the oracle augmenters -----------------------------------------------------------------


def local_augment(fact: Fact) -> list[str]:
    """Sentence-level augmentation: every training wording of the fact, forward (rephrasings)
    and reversed (reversals)."""
    forwards, reverses = TEMPLATES[fact.kind]
    return [sentence(render(fact, t)) for t in forwards + reverses]


def global_augment(document_facts: list[Fact], derived: dict[Fact, tuple[Fact, ...]]) -> list[str]:
    """Document-level augmentation: the inferences that link a document to the rest of the
    training set, i.e. the reversal of each fact it states and every derived fact (from
    `derive` over the whole training set) that needs one of them as a premise."""
    stated = set(document_facts)
    reversals = [sentence(render(f, TEMPLATES[f.kind][1][0]))
                 for f in document_facts if TEMPLATES[f.kind][1]]
    inferences = [forward(g) for g, premises in derived.items() if stated.intersection(premises)]
    return reversals + inferences
