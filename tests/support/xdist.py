"""Running the suite on several workers (`pytest -n 2`): each live stack on one worker.

The live stacks of tests/crossservice are session fixtures, so every worker that runs a test of a stack
starts that stack (three processes, several seconds). This scheduler hands all tests of one backend's
stack to one worker and spreads every other test singly, like `--dist load`. (xdist's own `loadgroup`
cannot be used: it renames test ids in a way this pytest no longer honours.)
"""

from __future__ import annotations

import re

from xdist.scheduler import LoadScopeScheduling

LIVE = "tests/crossservice/"
_BACKEND = re.compile(r"[\[-](sqlite|postgres)[\]-]")


def scope_of(nodeid: str) -> str:
    """The unit a worker takes whole: a live stack's tests together, any other test alone."""
    if nodeid.startswith(LIVE):
        found = _BACKEND.search(nodeid[nodeid.find("[") :]) if "[" in nodeid else None
        return f"live-{found.group(1) if found else 'any'}"
    return nodeid


class LiveStackScheduling(LoadScopeScheduling):
    def _split_scope(self, nodeid: str) -> str:
        return scope_of(nodeid)
