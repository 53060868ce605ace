"""Write docker/constraints.txt: the exact installed versions of schoolsync's runtime dependencies.

Run from the repository root with the virtualenv the tests passed in:
``.venv/bin/python docker/freeze_constraints.py``. The image installs with
``pip install --constraint constraints.txt``, so a build gets what the suite ran with.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement


def _closure() -> dict[str, tuple[str, str]]:
    seen: dict[str, tuple[str, str]] = {}

    def walk(name: str, extras: tuple[str, ...]) -> None:
        key = re.sub(r"[-_.]+", "-", name).lower()
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            return
        seen.setdefault(key, (dist.metadata["Name"], dist.version))
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is not None and not any(
                req.marker.evaluate({"extra": extra}) for extra in ("", *extras)
            ):
                continue
            if re.sub(r"[-_.]+", "-", req.name).lower() not in seen or req.extras:
                walk(req.name, tuple(req.extras))

    for line in distribution("schoolsync").requires or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            walk(req.name, tuple(req.extras))
    return seen


def main() -> None:
    header = [
        "# Exact versions the image installs (pip --constraint): the versions the test suite last",
        "# ran with. Refresh after changing pyproject.toml: .venv/bin/python docker/freeze_constraints.py",
    ]
    pins = [f"{name}=={version}" for _, (name, version) in sorted(_closure().items())]
    Path("docker/constraints.txt").write_text("\n".join(header + pins) + "\n", encoding="utf-8")
    print(f"docker/constraints.txt: {len(pins)} packages")


if __name__ == "__main__":
    main()
