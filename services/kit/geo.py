"""Positions: their fields in request bodies, and distances on the Earth's surface for the checks that compare
a photo's or a report's position."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field, JsonValue
from pydantic.config import JsonDict

__all__ = ["BOTH_OR_NEITHER", "EARTH_RADIUS_M", "Latitude", "Longitude", "distance_m"]

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in metres between two (latitude, longitude) points in degrees.

    The sphere's Vincenty formula (an `atan2` of the angle's sine and cosine): exact to rounding at every
    distance, where the haversine's `asin` loses metres near the antipode (a path over a third point came
    out shorter than the direct one)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    dlon = lon2 - lon1
    sin1, cos1, sin2, cos2 = math.sin(lat1), math.cos(lat1), math.sin(lat2), math.cos(lat2)
    across = math.hypot(cos2 * math.sin(dlon), cos1 * sin2 - sin1 * cos2 * math.cos(dlon))
    along = sin1 * sin2 + cos1 * cos2 * math.cos(dlon)
    return EARTH_RADIUS_M * math.atan2(across, along)


# A position in a JSON body: a JSON number (not a boolean or a string of digits), WGS-84.
Latitude = Annotated[float, Field(ge=-90, le=90, strict=True, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, strict=True, allow_inf_nan=False)]

_NUMBER: JsonDict = {"type": "number"}
# "Give both latitude and longitude, or neither", as a JSON Schema `allOf` for the model's json_schema_extra,
# so that the documents say the rule the code keeps (422 `incomplete_position`).
BOTH_OR_NEITHER: list[JsonValue] = [
    {
        "if": {"properties": {a: _NUMBER}, "required": [a]},
        "then": {"properties": {b: _NUMBER}, "required": [b]},
    }
    for a, b in (("latitude", "longitude"), ("longitude", "latitude"))
]
