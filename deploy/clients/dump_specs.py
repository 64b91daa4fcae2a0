"""Write each service's OpenAPI document to a folder: `python deploy/clients/dump_specs.py OUT`.

The apps are built, not run (nothing listens, no database is opened), so the documents are exactly what
`/openapi.json` serves.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path


def main(out: Path) -> None:
    from services.issues.app import create_app as issues
    from services.issues.settings import IssuesSettings
    from services.media.app import create_app as media
    from services.media.settings import MediaSettings
    from services.scoring.app import create_app as scoring
    from services.scoring.settings import ScoringSettings

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data_dir:
        apps = {
            "issues": issues(IssuesSettings(data_dir=Path(data_dir))),
            "scoring": scoring(ScoringSettings(data_dir=Path(data_dir))),
            "media": media(MediaSettings(data_dir=Path(data_dir))),
        }
        for name, app in apps.items():
            (out / f"{name}.json").write_text(json.dumps(app.openapi(), ensure_ascii=False, indent=1))
            print(f"{name}: {len(app.openapi()['paths'])} paths")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
