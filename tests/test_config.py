"""symtune.config: one loader checks every config, and the CLI flags come from the same fields."""

import argparse
import dataclasses
import re

import pytest

from symtune.cli import build_parser, command_parser, eval_config, main
from symtune.config import add_flags, default_of, from_mapping, given, knob, shown
from symtune.demo import DemoConfig
from symtune.errors import SymtuneError
from symtune.mixture import MixtureConfig
from symtune.studies.cli import make_config
from symtune.studies.generalization import GeneralizationConfig
from symtune.studies.two_stage import TwoStageConfig
from symtune.suites import EvalConfig
from symtune.train.recipe import load_recipe


@dataclasses.dataclass
class Toy:
    name: str = knob(help="required: no default")
    count: int = knob(3, "how many", minimum=1)
    rate: float = knob(0.5, "a share", minimum=0.0, maximum=1.0)
    on: bool = knob(True, "a switch that is on")
    tags: tuple[str, ...] = knob(("a", "b"), "some tags")
    pair: tuple[float, float] = knob((1.0, 2.0), "two weights")
    sets: list[str] = knob([], "repeatable")
    limit: int | None = knob(None, "unset: no limit", minimum=1)
    table: dict = knob({}, "a mapping")


def test_from_mapping_types_coerces_and_fills_defaults():
    toy = from_mapping(Toy, {"name": "x", "rate": 1, "tags": ["c"], "pair": [3, "4"], "limit": None}, "here")
    assert toy == Toy(name="x", rate=1.0, tags=("c",), pair=(3.0, 4.0))
    assert isinstance(toy.rate, float) and toy.sets == [] and toy.sets is not Toy(name="y").sets


@pytest.mark.parametrize("values,needle", [
    ({"name": "x", "cuont": 2}, r"unknown toy key 'cuont' in here \(did you mean count\?\)"),
    ({"count": 2}, r"missing toy key 'name' in here"),
    ({"name": "x", "count": "many"}, r"here: toy key count must be int, got 'many'"),
    ({"name": "x", "count": True}, r"toy key count must be int, got True"),
    ({"name": "x", "count": 2.0}, r"toy key count must be int, got 2.0"),
    ({"name": "x", "rate": "fast"}, r"toy key rate must be float, got 'fast'"),
    ({"name": "x", "on": "yes"}, r"toy key on must be bool, got 'yes'"),
    ({"name": 3}, r"toy key name must be str, got 3"),
    ({"name": "x", "limit": "none"}, r"toy key limit must be int or null, got 'none'"),
    ({"name": "x", "tags": "a,b"}, r"toy key tags must be tuple, got 'a,b'"),
    ({"name": "x", "tags": ["a", 1]}, r"each of here: toy key tags must be str, got 1"),
    ({"name": "x", "pair": [1.0]}, r"toy key pair must be 2 values, got \(1.0,\)"),
    ({"name": "x", "sets": "a"}, r"toy key sets must be list, got 'a'"),
    ({"name": "x", "table": [1]}, r"toy key table must be dict, got \[1\]"),
    ({"name": "x", "count": 0}, r"toy key count must be at least 1, got 0"),
    ({"name": "x", "rate": 1.5}, r"toy key rate must be at most 1, got 1.5"),
    ({"name": "x", "limit": 0}, r"toy key limit must be at least 1, got 0"),
    (["name"], r"here: a toy config is a mapping of key: value"),
])
def test_from_mapping_refuses_unknown_keys_and_bad_values_naming_them(values, needle):
    with pytest.raises(SymtuneError, match=needle):
        from_mapping(Toy, values, "here", "toy")


def test_a_misspelt_recipe_key_gets_a_hint():
    with pytest.raises(SymtuneError, match=r"unknown recipe key 'lr_rate' in the overrides \(did you mean lr\?\)"):
        load_recipe("cpu-small", ["lr_rate=1e-3"])
    with pytest.raises(SymtuneError, match=r"unknown recipe key 'max_step' in the overrides \(did you mean max_steps"):
        load_recipe("cpu-small", {"max_step": 3})
    with pytest.raises(SymtuneError, match=r"the overrides: recipe key lr must be float, got 'fast'"):
        load_recipe("cpu-small", ["lr=fast"])


@pytest.mark.parametrize("argv,needle", [
    (["--max-prompt-tokes", "5"], "unrecognized arguments: --max-prompt-tokes 5 (did you mean --max-prompt-tokens?)"),
    (["--calibrate"], "(did you mean --calibration?)"),
    (["--n", "0"], "argument --n: must be at least 1, got 0"),
    (["--seeds", "two"], "argument --seeds: must be a whole number, got 'two'"),
])
def test_a_misspelt_or_bad_eval_flag_is_one_line_with_a_hint(tmp_path, capsys, argv, needle):
    assert main(["eval", "--suite", "grid", "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symtune: error: ") and err.count("\n") == 1 and needle in err, err
    assert not (tmp_path / "o").exists()


def test_derived_flags_follow_the_annotations():
    parser = argparse.ArgumentParser()
    add_flags(parser, Toy, sets={"flag": "--set"})
    args = parser.parse_args(["--name", "x", "--no-on", "--tags", "c, d", "--pair", "1,2", "--set", "a", "--set", "b"])
    assert given(args, Toy) == {"name": "x", "on": False, "tags": ("c", "d"), "pair": (1.0, 2.0), "sets": ["a", "b"]}
    assert given(parser.parse_args(["--name", "x"]), Toy) == {"name": "x"}  # the rest: not given
    with pytest.raises(SystemExit, match="^2$"):  # argparse: usage error
        parser.parse_args([])  # a field without a default is a required flag
    helps = {a.dest: a.help for a in parser._actions}
    assert helps["count"] == "how many (default 3)" and helps["limit"] == "unset: no limit"
    assert helps["on"] == "a switch that is on (default on)" and helps["tags"] == "some tags (default a,b)"


# ---- each default stated once -----------------------------------------------------------------

REQUIRED = {"eval": ["--suite", "grid", "--out", "o"], "data": ["--tasks", "t", "--out", "o"]}
COMMANDS = {  # command -> (its config class, the config the command line builds with no flags)
    ("data", "build"): (MixtureConfig, lambda args: from_mapping(MixtureConfig, given(args, MixtureConfig), "x"), {}),
    ("eval",): (EvalConfig, lambda args: eval_config(args), {"suite": "grid"}),
    ("demo",): (DemoConfig, lambda args: from_mapping(DemoConfig, given(args, DemoConfig), "x"), {}),
    ("study", "generalization"): (GeneralizationConfig, lambda args: make_config(
        GeneralizationConfig, "generalization", False, given(args, GeneralizationConfig)), {}),
    ("study", "two-stage"): (TwoStageConfig, lambda args: make_config(
        TwoStageConfig, "two_stage", False, given(args, TwoStageConfig)), {}),
}


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_each_commands_defaults_are_its_dataclass_defaults(command):
    cls, build, required = COMMANDS[command]
    parser = build_parser()
    args = parser.parse_args([*command, *REQUIRED.get(command[0], [])])
    assert build(args) == cls(**required)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    flags = [a for a in command_parser(parser, args)._actions if a.dest in fields]
    assert len(flags) >= 8
    for action in flags:
        default, text = default_of(fields[action.dest]), action.help.replace("%%", "%")
        assert action.default is None or action.dest == "out", action.dest  # not given: the dataclass decides
        stated = re.findall(r"\(default ([^)]*)\)", text)
        assert len(re.findall(r"default", text)) == len(stated) <= 1, (action.dest, text)
        if stated:  # the one default the help states is the dataclass's (for --seeds N: how many)
            count = str(len(default)) if isinstance(default, tuple) else None
            assert stated[0] in (shown(default), shown(default, ":"), count), (action.dest, text)
            assert text.endswith(f"(default {stated[0]})")
        elif action.const is not False:  # a store_false flag (--allow-natural-symbols) says what it turns off
            assert not shown(default), (action.dest, text)


def test_study_presets_layer_under_explicit_flags():
    parser = build_parser()
    args = parser.parse_args(["study", "two-stage", "--quick", "--forget-n", "5"])
    cfg = make_config(TwoStageConfig, "two_stage", True, given(args, TwoStageConfig))
    assert (cfg.seeds, cfg.steps, cfg.n_eval, cfg.forget_n, cfg.forget_k) == (1, 40, 12, 5, TwoStageConfig().forget_k)
