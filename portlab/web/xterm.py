"""xterm.js, the terminal in the classroom's pages, from a package on PyPI, served offline.

No CDN: the page must work on a course machine without internet. Debian's
libjs-xterm (3.8.1) ships a browser file that only `require`s CommonJS
modules, so it does not load in a page; the source distribution of webssh
1.6.3 on PyPI (MIT) ships xterm.js 4 built for browsers, with its fit addon
and style sheet. They are fetched once from the package index pip uses
($PIP_INDEX_URL, else PyPI's), the archive checked against the index's
sha256 and each file against its own, pinned here, and kept in the user's
data directory (`$XDG_DATA_HOME/portlab/xterm`, else ~/.local/share/...).
`scripts/bootstrap` fetches them; `portlab classroom serve` does on first use.

    python -m portlab.web.xterm      fetch them now (what bootstrap runs)
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import sys
import tarfile
import urllib.parse
import urllib.request
from pathlib import Path

from portlab.errors import RuntimeProblem

PACKAGE, VERSION = "webssh", "1.6.3"
ARCHIVE_SHA256 = "2bce5bbaf206ad345910c7e4dc8024b3c418e681c9f5ff098f1802beff76e100"
# served name -> (member of the archive, its sha256)
FILES = {
    "xterm.js": ("webssh/static/js/xterm.min.js",
                 "96a52b10e7bf0ae6150588b72649fe4335116c5a98ddafe608037234ab653178"),
    "xterm-addon-fit.js": ("webssh/static/js/xterm-addon-fit.min.js",
                           "247435fe116bb4230fc7d45b34f4cf1478dd3adc63fdcdae33daba5b32795a59"),
    "xterm.css": ("webssh/static/css/xterm.min.css",
                  "09ae6bd4cc0f559c4c77b5cec7451ae686fd815d09c586cfd819630cd25709f9"),
}


def folder() -> Path:
    root = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(root) / "portlab" / "xterm"


def _good(path: Path, digest: str) -> bool:
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == digest


def present() -> bool:
    return all(_good(folder() / name, digest) for name, (_, digest) in FILES.items())


def assets() -> dict[str, bytes]:
    """served name -> content; fetched first where missing (RuntimeProblem if it cannot)."""
    if not present():
        fetch()
    return {name: (folder() / name).read_bytes() for name in FILES}


def fetch() -> Path:
    """Fetch the files from the package index into folder(). Raises RuntimeProblem."""
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    where = f"{index}/{PACKAGE}/"
    try:
        page = urllib.request.urlopen(where, timeout=60).read().decode()
        found = re.search(rf'href="([^"#]*{PACKAGE}-{re.escape(VERSION)}\.tar\.gz)#sha256='
                          rf'{ARCHIVE_SHA256}"', page)
        if found is None:
            raise RuntimeProblem(f"the package index at {index} has no {PACKAGE} {VERSION} "
                                 "source distribution with the expected sha256")
        url = urllib.parse.urljoin(where, found.group(1))
        data = urllib.request.urlopen(url, timeout=120).read()
    except OSError as exc:
        raise RuntimeProblem(f"cannot fetch xterm.js ({PACKAGE} {VERSION} from {index}): {exc}",
                             hint="run `python -m portlab.web.xterm` where PyPI is reachable, "
                                  f"or copy {folder()} from a machine that has it") from None
    if hashlib.sha256(data).hexdigest() != ARCHIVE_SHA256:
        raise RuntimeProblem(f"{url} does not match its sha256: not used")
    out = folder()
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for name, (member, digest) in FILES.items():
            got = tar.extractfile(f"{PACKAGE}-{VERSION}/{member}")
            content = got.read() if got is not None else b""
            if hashlib.sha256(content).hexdigest() != digest:
                raise RuntimeProblem(f"{member} in {PACKAGE} {VERSION} is not the file expected")
            (out / name).write_bytes(content)
    return out


if __name__ == "__main__":
    try:
        print(f"xterm.js is in {folder() if present() else fetch()}")
    except RuntimeProblem as exc:
        print(f"portlab: {exc}", file=sys.stderr)
        sys.exit(1)
