"""SCAN (Lake & Baroni 2018) generated from its grammar, with the standard splits.

    C -> S and S | S after S | S          S -> V twice | V thrice | V
    V -> D opposite dir | D around dir | D dir | U       D -> U | turn      U -> walk|look|run|jump

The grammar yields exactly 20,910 commands; the longest action sequence has 48 actions.
"""

import random

from symtune.errors import SymtuneError
from symtune.tasks.task import Example, Task

PRIMITIVES = {"walk": "I_WALK", "look": "I_LOOK", "run": "I_RUN", "jump": "I_JUMP"}
TURNS = {"left": "I_TURN_LEFT", "right": "I_TURN_RIGHT"}
# The output vocabulary, each symbol with its meaning (what Symbol-evol definitions state).
SCAN_ACTIONS = {
    "I_WALK": "walk", "I_LOOK": "look", "I_RUN": "run", "I_JUMP": "jump",
    "I_TURN_LEFT": "turn left", "I_TURN_RIGHT": "turn right",
}
SCAN_SPLITS = ("simple", "add_jump", "length")
LENGTH_SPLIT_MAX = 22  # length split: train on at most 22 actions, test on longer sequences
ADD_JUMP_SHARE = 0.1  # add-jump split: the lone "jump" is repeated to 10% of train, as the original


def _verb_phrases() -> list[str]:
    phrases = list(PRIMITIVES)
    for verb in [*PRIMITIVES, "turn"]:
        for direction in TURNS:
            phrases += [f"{verb} {direction}", f"{verb} opposite {direction}", f"{verb} around {direction}"]
    return phrases


def all_commands() -> list[str]:
    """Every SCAN command, in a fixed order."""
    singles = [v + repeat for v in _verb_phrases() for repeat in ("", " twice", " thrice")]
    return singles + [f"{a} {conj} {b}" for conj in ("and", "after") for a in singles for b in singles]


def _verb_phrase(words: list[str], command: str) -> list[str]:
    if len(words) == 1 and words[0] in PRIMITIVES:
        return [PRIMITIVES[words[0]]]
    verb, direction = words[0], words[-1]
    if verb not in {*PRIMITIVES, "turn"} or direction not in TURNS or len(words) > 3:
        raise SymtuneError(f"not a SCAN command: {command!r}")
    act = [] if verb == "turn" else [PRIMITIVES[verb]]
    turn = TURNS[direction]
    if len(words) == 2:
        return [turn] + act
    if words[1] == "opposite":
        return [turn, turn] + act
    if words[1] == "around":
        return ([turn] + act) * 4
    raise SymtuneError(f"not a SCAN command: {command!r}")


def interpret(command: str) -> list[str]:
    """The action sequence a SCAN command denotes, e.g. "jump left" -> [I_TURN_LEFT, I_JUMP]."""
    words = command.split()
    if sum(w in ("and", "after") for w in words) > 1:
        raise SymtuneError(f"not a SCAN command (one 'and'/'after' at most): {command!r}")
    for conj in ("and", "after"):
        if conj in words:
            i = words.index(conj)
            first, second = interpret(" ".join(words[:i])), interpret(" ".join(words[i + 1:]))
            return first + second if conj == "and" else second + first
    repeat = {"twice": 2, "thrice": 3}.get(words[-1] if words else "", 1)
    if repeat > 1:
        words = words[:-1]
    if not words:
        raise SymtuneError(f"not a SCAN command: {command!r}")
    return _verb_phrase(words, command) * repeat


def scan_split(split: str, seed: int = 0) -> tuple[list[str], list[str]]:
    """(train commands, test commands) of a standard split, each list shuffled by `seed`.

    simple: a random 80/20 split. add_jump: train has every command without "jump" plus the
    lone "jump" (repeated to 10% of train); test has every other command with "jump".
    length: train has the commands of at most 22 actions, test the longer ones."""
    rng = random.Random(seed)
    commands = all_commands()
    if split == "simple":
        rng.shuffle(commands)
        cut = round(0.8 * len(commands))
        return commands[:cut], commands[cut:]
    if split == "add_jump":
        train = [c for c in commands if "jump" not in c.split()]
        test = [c for c in commands if "jump" in c.split() and c != "jump"]
        train += ["jump"] * round(ADD_JUMP_SHARE * len(train) / (1 - ADD_JUMP_SHARE))
    elif split == "length":
        short = {c: len(interpret(c)) <= LENGTH_SPLIT_MAX for c in commands}
        train = [c for c in commands if short[c]]
        test = [c for c in commands if not short[c]]
    else:
        raise SymtuneError(f"unknown SCAN split {split!r}; choose one of {', '.join(SCAN_SPLITS)}")
    rng.shuffle(train)
    rng.shuffle(test)
    return train, test


def scan_task(split: str = "simple", seed: int = 0) -> Task:
    """A SCAN split as a generation Task: text is the command, label the action sequence."""
    train, test = scan_split(split, seed)

    def examples(commands):
        return [Example(text=c, label=" ".join(interpret(c))) for c in commands]

    return Task(
        name=f"scan_{split}", labels=[], train=examples(train), test=examples(test),
        source=f"scan:{split}", meta={"split": split, "seed": seed},
    )
