"""The one base of the project's config dataclasses: built from a dict, refusing unknown keys.

A config read from JSON or a command line is a dict; a misspelt key would otherwise be
dropped in silence or end in a TypeError that does not say which keys are valid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

ConfigT = TypeVar("ConfigT", bound="ConfigBase")


class ConfigBase:
    """Mixin for a dataclass: `from_dict` checks the keys, `to_dict` gives them back.

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
    def from_dict(cls: type[ConfigT], values: Mapping[str, Any], where: str = "") -> ConfigT:
        """The config `values` describe; `where` names their source in an error."""
        cls.check_keys(values, where)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
