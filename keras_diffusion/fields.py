"""Dataclasses as command lines: one field, one flag, one help text.

``TrainConfig`` (train) and ``SamplingConfig`` (sample, edit, evaluate) are
frozen-in-spirit dataclasses whose fields carry their help and choices; the
flags are generated from them, and the same dataclass is written to and read
from JSON. Nothing here imports more than the standard library.
"""

import argparse
import dataclasses
import json
import typing


def field(default, help, choices=None):
    """A dataclass field with its --help text and, optionally, the values it may take."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


def add_arguments(parser, cls, skip=()):
    """Add one ``--flag`` per dataclass field (except those in ``skip``), typed and with its help text."""
    hints = typing.get_type_hints(cls)
    for spec in dataclasses.fields(cls):
        if spec.name in skip:
            continue
        kind = hints[spec.name]
        flag = "--" + spec.name.replace("_", "-")
        if kind is bool:
            # False by default: a plain switch; None (decided later) or True: --flag / --no-flag
            action = "store_true" if spec.default is False else argparse.BooleanOptionalAction
            shown = "" if spec.default is not True else " (default: on)"
            parser.add_argument(flag, action=action, default=spec.default, help=spec.metadata["help"] + shown)
            continue
        parse = _json_dict if kind is dict else kind
        parser.add_argument(
            flag,
            type=parse,
            default=spec.default,
            choices=spec.metadata.get("choices"),
            help=spec.metadata["help"] + ("" if spec.default is None else f" (default: {spec.default})"),
            metavar="JSON" if kind is dict else None,
        )


def from_arguments(args, cls, **overrides):
    """The dataclass built from parsed argparse arguments (``overrides`` replace some of them)."""
    return cls(**{spec.name: overrides.get(spec.name, getattr(args, spec.name, spec.default)) for spec in dataclasses.fields(cls)})


def from_dict(cls, values):
    """The dataclass from a JSON object; unknown keys and wrong types raise ValueError naming the key."""
    known = {spec.name for spec in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown config keys {unknown}; known keys are {sorted(known)}")
    check_types(values, cls)
    return cls(**values)


def check_types(values, cls):
    """Raise ValueError naming the first key whose value has the wrong type (None only where it is the default)."""
    hints = typing.get_type_hints(cls)
    defaults = {spec.name: spec.default for spec in dataclasses.fields(cls)}
    for key, value in values.items():
        expected = hints[key]
        if value is None:
            ok = defaults[key] is None
        elif isinstance(value, bool):
            ok = expected is bool  # bool is an int to Python, but true is not a number of epochs
        else:
            ok = isinstance(value, expected) or (expected is float and isinstance(value, int))
        if not ok:
            raise ValueError(f"config key {key!r} must be {expected.__name__}, got {value!r}")


def check_choices(config):
    """Raise ValueError naming the first field whose value is not one of its choices."""
    for spec in dataclasses.fields(config):
        choices = spec.metadata.get("choices")
        value = getattr(config, spec.name)
        if choices and value is not None and value not in choices:
            raise ValueError(f"{spec.name} must be one of {', '.join(choices)}; got {value!r}")


def _json_dict(text):
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error.msg}): {text}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object like '{{\"hidden\": 256}}', got {text}")
    return value
