"""One config mechanism: every config is a dataclass whose fields state each knob once. Torch-free.

A knob is `name: type = knob(default, "help", minimum=...)`: its default, help text and range
live on the dataclass. `from_mapping` builds a config from a mapping (a YAML file, `key=value`
overrides, the flags given), refusing unknown keys with a did-you-mean hint and values of the
wrong type or range; `add_flags` derives the argparse options from the same fields, so no
default or help text is written twice. Every derived option defaults to None ("not given"),
so a command can layer a preset under the flags given (`given`).
"""

import argparse
import dataclasses
import difflib
import re
import types
import typing

import yaml

from symtune.errors import SymtuneError
from symtune.validate import integer, option_type, real

BOUNDS = ("minimum", "maximum", "above")  # a knob's range, as `integer` and `real` take it


def knob(default=dataclasses.MISSING, help: str = "", **bounds):
    """A dataclass field with its help text and range (minimum, maximum; above for floats)."""
    metadata = {"help": help, **bounds}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def default_of(f: dataclasses.Field):
    """A field's default (MISSING where it has none)."""
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def did_you_mean(key, known) -> str:
    """" (did you mean X?)" with the known name closest to `key` (difflib's, else one that is a word
    of it: lr for lr_rate), or ""."""
    key, known = str(key), [str(k) for k in known]
    words = re.split(r"[-_]+", key.lstrip("-"))
    close = difflib.get_close_matches(key, known, n=1) or [k for k in known if k.lstrip("-") in words]
    return f" (did you mean {close[0]}?)" if close else ""


def check_keys(keys, known, kind: str, where: str) -> None:
    for key in keys:
        if key not in known:
            raise SymtuneError(f"unknown {kind} key {key!r} in {where}{did_you_mean(key, known)}")


def type_names(hint) -> tuple[tuple[type, ...], str]:
    """The types an annotation accepts (generics by their origin: list[str] -> list) and their names."""
    kinds = tuple(typing.get_origin(a) or a for a in union_args(hint))
    return kinds, " or ".join("null" if k is type(None) else k.__name__ for k in kinds)


def union_args(hint) -> tuple:
    return typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)


def typed(value, hint, what: str):
    """`value` as the annotation `hint` wants it: ints and numeric strings become floats where floats
    belong, a list becomes a tuple where a tuple belongs, elements of list[X] and tuple[X, ...] are
    checked too; anything else of the wrong type is refused, naming `what`."""
    kinds, names = type_names(hint)
    if tuple in kinds and list not in kinds and isinstance(value, list):
        value = tuple(value)
    if (float in kinds and isinstance(value, (int, str)) and not isinstance(value, bool)
            and not (isinstance(value, str) and str in kinds)):
        try:
            value = float(value)
        except ValueError:
            pass
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise SymtuneError(f"{what} must be {names}, got {value!r:.80}")
    args = next((typing.get_args(a) for a in union_args(hint) if typing.get_origin(a) in (list, tuple)
                 and isinstance(value, typing.get_origin(a))), ())
    if isinstance(value, tuple) and args:
        if Ellipsis not in args and len(args) != len(value):
            raise SymtuneError(f"{what} must be {len(args)} values, got {value!r:.80}")
        elements = [args[0]] * len(value) if Ellipsis in args else args
        value = tuple(typed(v, h, f"each of {what}") for v, h in zip(value, elements))
    elif isinstance(value, list) and args:
        value = [typed(v, args[0], f"each of {what}") for v in value]
    return value


def bounds_of(f: dataclasses.Field) -> dict:
    return {key: f.metadata[key] for key in BOUNDS if key in f.metadata}


def in_range(value, f: dataclasses.Field, what: str):
    bounds = bounds_of(f)
    if not bounds or value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return integer(value, what, **bounds)
    return real(value, what, **bounds) if isinstance(value, float) else value


def checked_values(cls, values: dict, where: str, kind: str) -> dict:
    """`values` (some of `cls`'s fields) with each key known and each value typed and in range."""
    if not isinstance(values, dict):
        raise SymtuneError(f"{where}: a {kind} config is a mapping of key: value, got {values!r:.80}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    check_keys(values, fields, kind, where)
    hints = typing.get_type_hints(cls)
    out = {}
    for key, value in values.items():
        what = f"{where}: {kind} key {key}"
        out[key] = in_range(typed(value, hints[key], what), fields[key], what)
    return out


def from_mapping(cls, values: dict, where: str, kind: str | None = None):
    """An instance of the dataclass `cls` from `values`: unknown keys refused with a did-you-mean
    hint, values type-checked against the field annotations and checked against their range."""
    kind = kind or cls.__name__
    values = checked_values(cls, values, where, kind)
    for f in dataclasses.fields(cls):
        if f.init and f.name not in values and default_of(f) is dataclasses.MISSING:
            raise SymtuneError(f"missing {kind} key {f.name!r} in {where}")
    return cls(**values)


def parse_override(item: str) -> tuple[str, object]:
    """A "key=value" override: the value parsed as YAML."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise SymtuneError(f"--set expects key=value, got {item!r}")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        raise SymtuneError(f"--set {key}: cannot parse the value {value!r}") from None


# ---- command-line flags ------------------------------------------------------------------


def shown(default, sep: str = ",") -> str:
    """A default as the help text shows it ("" where there is nothing to show: None, False, empty)."""
    if default is dataclasses.MISSING or default is None or default is False or default == ():
        return ""
    if isinstance(default, (tuple, list)):
        return sep.join(f"{v:g}" if isinstance(v, float) else str(v) for v in default)
    if default is True:
        return "on"
    return str(default)


def help_text(f: dataclasses.Field, sep: str = ",") -> str:
    """The field's help, then its default from the dataclass (a tuple's items joined by `sep`); % escaped."""
    text, default = f.metadata.get("help", ""), shown(default_of(f), sep)
    if default:
        text = f"{text} (default {default})" if text else f"default {default}"
    return text.replace("%", "%%")


def number_type(check, bounds: dict):
    parse = option_type(check, **bounds)
    parse.__name__ = "int" if check is integer else "float"
    return parse


def comma_separated(element):
    """An argparse type: "a,b,c" as a tuple, each element through `element`."""

    def parse(text: str) -> tuple:
        return tuple(element(part.strip()) for part in text.split(",") if part.strip())

    parse.__name__ = "comma-separated list"
    return parse


def flag_kind(hint, f: dataclasses.Field) -> dict:
    """argparse keywords for a field's annotation: bool a switch, int and float checked numbers in
    the field's range, a tuple comma-separated, a list a repeatable option, anything else a string."""
    kinds, _ = type_names(hint)
    bounds = bounds_of(f)
    if bool in kinds:
        return {"action": argparse.BooleanOptionalAction if default_of(f) is True else "store_true"}
    if int in kinds:
        return {"type": number_type(integer, bounds), "metavar": "N"}
    if float in kinds:
        return {"type": number_type(real, bounds), "metavar": "X"}
    if tuple in kinds:
        args = next(typing.get_args(a) for a in union_args(hint) if typing.get_origin(a) is tuple)
        element = {int: number_type(integer, {}), float: number_type(real, {})}.get(args[0], str)
        return {"type": comma_separated(element), "metavar": "A,B"}
    if list in kinds:
        return {"action": "append", "metavar": "VALUE"}
    return {}


def add_flags(parser, cls, names=None, **overrides) -> None:
    """One option per field of `cls` (or of `names`): --field-name, typed from its annotation, its
    help from the field's metadata with the dataclass default. Each option defaults to None (not
    given). `overrides` {field: argparse keywords} change a field's option; "flag" renames it, and
    "sep" joins a tuple default in the help (for an option that parses its own separator)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in names or fields:
        f, extra = fields[name], dict(overrides.get(name, {}))
        flag, sep = extra.pop("flag", "--" + name.replace("_", "-")), extra.pop("sep", ",")
        required = default_of(f) is dataclasses.MISSING
        parser.add_argument(flag, **{"dest": name, "default": None, "required": required, "help": help_text(f, sep),
                                     **flag_kind(hints[name], f), **extra})


def given(args, cls) -> dict:
    """The flags of `cls`'s fields that the command line gave (not None)."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
            if getattr(args, f.name, None) is not None}
