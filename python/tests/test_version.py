"""The helper's version is the project's: debian/changelog's newest entry."""

import re
from pathlib import Path

import nginx_discovery

CHANGELOG = Path(__file__).resolve().parents[2] / "debian" / "changelog"


def test_version_is_the_changelogs():
    first = CHANGELOG.read_text(encoding="utf-8").splitlines()[0]
    # "package (epoch:upstream-revision) ...": a package revision is Debian's
    version = re.match(r"\S+ \((?:\d+:)?([^)]+?)(?:-[^-)]+)?\)", first).group(1)
    assert nginx_discovery.__version__ == version
