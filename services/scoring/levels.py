"""Region levels as scoring knows them: the issues service's levels, top down, written once on this side
(services do not import each other), and the two of them that are scored and ranked. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

__all__ = ["RegionLevel", "UnitLevel", "levels_between", "one_of"]


class RegionLevel(StrEnum):
    """The issues service's region levels, top down (its `Level`): the contract between the two services."""

    province = "province"
    city = "city"
    county = "county"
    town = "town"  # 乡镇 / 街道
    zone = "zone"  # 管区 (optional)
    village = "village"  # 村 / 社区
    grid = "grid"  # 网格

    @property
    def depth(self) -> int:
        """0 for a province, one more for each level down."""
        return list(RegionLevel).index(self)

    @classmethod
    def of(cls, text: str) -> RegionLevel | None:
        """The level a region's `level` names, or None for one this side does not know."""
        try:
            return cls(text)
        except ValueError:
            return None


class UnitLevel(StrEnum):
    """What is scored and ranked: the region levels of villages and towns."""

    village = RegionLevel.village.value  # 村(居)
    town = RegionLevel.town.value  # 镇(街道)


def levels_between(top: RegionLevel, bottom: RegionLevel) -> list[RegionLevel]:
    """The levels below `top` down to `bottom` (included), top down; none when `bottom` is not below."""
    return [level for level in RegionLevel if top.depth < level.depth <= bottom.depth]


def one_of(values: Iterable[str]) -> str:
    """A query parameter's pattern taking exactly these values."""
    return "^(" + "|".join(values) + ")$"
