"""The one base of the project's config dataclasses: built from a dict, refusing unknown keys
and values of the wrong type or out of their declared bounds.

A config read from JSON or a command line is a dict; a misspelt key would otherwise be
dropped in silence or end in a TypeError that does not say which keys are valid, and a value
such as ``"abc"`` for an integer or ``1e15`` samples would fail far from where it was given,
or allocate before failing. `from_dict` checks every value against its field's type (an
integral float such as ``1e3`` is taken as the integer 1000) and against the bounds a field
declares with `bounded`.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, Union

ConfigT = TypeVar("ConfigT", bound="ConfigBase")

BOUNDS = "bounds"
"""The field metadata key of a field's (low, high) bounds, either None for no bound."""

ABSENT = "absent"
"""The field metadata key of the value a record written before the field existed means."""

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list"}
_KEY_PATH = re.compile(r"^[A-Za-z_][\w.]*$")


def bounded(
    default: Any, low: float | None = None, high: float | None = None, absent: Any = dataclasses.MISSING
) -> Any:
    """A dataclass field with `default` whose value must lie in [low, high].

    `absent` is for a field added after records (manifests, cards) were written without it:
    `ConfigBase.from_record` reads such a record as `absent`, what it was made with, where a
    config written by hand still gets `default`."""
    metadata: dict[str, Any] = {BOUNDS: (low, high)}
    if absent is not dataclasses.MISSING:
        metadata[ABSENT] = absent
    return dataclasses.field(default=default, metadata=metadata)


def _describe(hint: Any) -> str:
    if hint is type(None):
        return "null"
    origin = typing.get_origin(hint) or hint
    if origin is dict or (isinstance(origin, type) and issubclass(origin, (Mapping, ConfigBase))):
        return "an object"
    return _TYPE_NAMES.get(origin, getattr(origin, "__name__", str(origin)))


def _check_type(name: str, value: Any, hint: Any) -> Any:
    """`value` as the type `hint` asks for (an integral float as an int), or a ValueError naming `name`."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _check_type(name, value, option)
            except ValueError:
                continue
        raise ValueError(f"{name}: {value!r} is not {' or '.join(_describe(option) for option in options)}")
    origin = typing.get_origin(hint) or hint
    if origin is bool:
        ok = isinstance(value, bool)
    elif origin is int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif origin is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            raise ValueError(f"{name}: {value!r} is not a finite number")
    elif origin is str:
        ok = isinstance(value, str)
    elif origin is list:
        ok = isinstance(value, list)
    elif origin is dict or (isinstance(origin, type) and issubclass(origin, ConfigBase)):
        ok = isinstance(value, (Mapping, origin))
    else:
        return value
    if not ok:
        raise ValueError(f"{name}: {value!r} is not {_describe(hint)}")
    return value


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _check_bounds(name: str, given: Any, value: Any, bounds: tuple[float | None, float | None]) -> None:
    low, high = bounds
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            valid = f"{_number(low)} to {_number(high)}"
        elif low is not None:
            valid = f"at least {_number(low)}"
        else:
            valid = f"at most {_number(high)}" if high is not None else ""
        shown = _number(given) if isinstance(given, (int, float)) else repr(given)
        raise ValueError(f"{name}: {shown} is out of range; valid: {valid}")


class ConfigBase:
    """Mixin for a dataclass: `from_dict` checks the keys and values, `to_dict` gives them back.

    `keys_name` is how an error calls the keys ("keys", "spectrogram parameters")."""

    keys_name: ClassVar[str] = "keys"

    if TYPE_CHECKING:
        __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    @classmethod
    def check_keys(cls, values: Mapping[str, Any], where: str = "") -> None:
        """Raise a ValueError naming the unknown keys of `values` and the valid ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            prefix = f"{where}: " if where else ""
            raise ValueError(f"{prefix}unknown {cls.keys_name} {sorted(unknown)}; valid keys: {sorted(known)}")

    @classmethod
    def field_name(cls, where: str, name: str) -> str:
        """How an error names field `name`: ``where.name`` when `where` is a key path
        (``stages.pretrain``), ``where: name`` when it is a file, else the name alone."""
        if not where:
            return name
        is_key_path = _KEY_PATH.match(where) and not where.endswith(".json")
        return f"{where}.{name}" if is_key_path else f"{where}: {name}"

    @classmethod
    def check_values(cls, values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        """`values` with known keys, each of its field's type (integral floats made integers)
        and within its field's bounds; a ValueError naming the first field that is not."""
        cls.check_keys(values, where)
        try:
            hints = typing.get_type_hints(cls)
        except NameError:  # an annotation only a type checker can resolve: those fields go unchecked
            hints = {}
        checked = dict(values)
        for spec in dataclasses.fields(cls):
            if spec.name not in values:
                continue
            name = cls.field_name(where, spec.name)
            checked[spec.name] = _check_type(name, values[spec.name], hints.get(spec.name, Any))
            _check_bounds(name, values[spec.name], checked[spec.name], spec.metadata.get(BOUNDS, (None, None)))
        return checked

    @classmethod
    def from_dict(cls: type[ConfigT], values: Mapping[str, Any], where: str = "") -> ConfigT:
        """The config `values` describe; `where` names their source in an error, also in one
        raised by the class's own checks."""
        checked = cls.check_values(values, where)
        try:
            return cls(**checked)
        except ValueError as err:
            if not where or str(err).startswith(where):
                raise
            raise ValueError(f"{where}: {err}") from err

    @classmethod
    def from_record(cls: type[ConfigT], values: Mapping[str, Any], where: str = "") -> ConfigT:
        """The config a record (written by `to_dict` into a manifest or card) describes: a field
        the record lacks takes the value its ``absent`` names, what the record was made with,
        and only a field without one takes its default."""
        recorded = {
            spec.name: spec.metadata[ABSENT]
            for spec in dataclasses.fields(cls)
            if ABSENT in spec.metadata and spec.name not in values
        }
        return cls.from_dict({**values, **recorded}, where)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
