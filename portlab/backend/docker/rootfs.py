"""The offline base: Debian's packages made into a root filesystem by mmdebstrap, imported.

mmdebstrap writes the root filesystem as a tar stream on its stdout, and
Docker imports that stream as it comes, so the import overlaps the build and
no 150 MB file is written and read back. The import is untagged (labelled
`portlab.import=<repository>`); the tag is put on only once mmdebstrap has
exited 0, so a stream cut short by an error or a signal is never tagged, and
the next build or `portlab prune` removes the untagged image.

What mmdebstrap prints goes to the build log in full; the progress shows
its steps in words.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

import docker.errors

from portlab.backend.docker import children
from portlab.backend.docker import client as docker_api
from portlab.backend.docker.buildlog import BuildLog
from portlab.errors import RuntimeProblem
from portlab.progress import Progress

DEBIAN_MIRROR = "http://deb.debian.org/debian"
LABEL_IMPORT = "portlab.import"  # on an imported base: the repository it was imported for
# mmdebstrap's own steps ("I: ..." lines), in words a newcomer can follow, numbered.
STEPS = [
    ("I: running apt-get update", "reading Debian's package lists"),
    ("I: downloading packages", "downloading the packages"),
    ("I: extracting archives", "unpacking the essential packages"),
    ("I: installing essential packages", "installing the essential packages"),
    ("I: installing remaining packages", "installing nmap, tcpdump, WireGuard, OpenSSH, ..."),
    ("I: cleaning package lists", "cleaning up"),
    ("I: creating tarball", "handing the filesystem to Docker"),
]


def argv(suite: str, packages: list[str], excludes: list[str], slim: Path, target: str,
         sources: Path) -> list[str]:
    """The mmdebstrap command line: the essential set plus `packages`, no recommends,
    merged /usr without the usrmerge package (which would pull in perl, 47 MB), and the
    `slim` script run in the finished tree."""
    out = ["mmdebstrap", "--variant=essential", "--mode=auto", "--format=tar",
           "--aptopt=APT::Install-Recommends \"false\"",
           "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
           f"--include={','.join(packages)}"]
    out += [f"--dpkgopt={rule}" for rule in excludes]
    out += [f"--customize-hook=upload {slim} /tmp/portlab-slim.sh",
            '--customize-hook=chroot "$1" sh /tmp/portlab-slim.sh',
            '--customize-hook=rm -f "$1/tmp/portlab-slim.sh"']
    return out + [suite, target, str(sources)]


def build(tag: str, *, suite: str, packages: list[str], excludes: list[str], slim: Path,
          changes: list[str], log: BuildLog, progress: Progress) -> None:
    """Build the base `tag` offline. Raises RuntimeProblem (naming the log) on failure."""
    repo, _, version = tag.rpartition(":")
    with tempfile.TemporaryDirectory(prefix="portlab-rootfs-") as tmp:
        sources = Path(tmp) / "debian.sources"
        sources.write_text(apt_sources(suite))
        cmd = argv(suite, packages, excludes, slim, "-", sources)
        log.write("$ " + " ".join(cmd))
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, preexec_fn=children.preexec())
        assert proc.stdout is not None and proc.stderr is not None
        said: list[str] = []
        reader = threading.Thread(target=_follow, args=(proc.stderr, said, log, progress),
                                  daemon=True)
        reader.start()
        image_id = None
        try:
            image_id = _import(proc.stdout, changes + [f'LABEL {LABEL_IMPORT}="{repo}"'])
            code = proc.wait()
            reader.join(timeout=10)
        except BaseException:
            kill_group(proc)
            if image_id:
                _remove(image_id)
            raise
        if code != 0 or image_id is None:
            if image_id:
                _remove(image_id)
            tail = "\n    ".join(said[-12:])
            raise RuntimeProblem(
                f"mmdebstrap failed with exit code {code}:\n    {tail}",
                hint=f"the whole build log: {log.path}")
        with docker_api.guard(f"tagging {tag}"):
            docker_api.client().api.tag(image_id, repo, version)


def _follow(stream: IO[bytes], said: list[str], log: BuildLog, progress: Progress) -> None:
    step = 0
    for raw in stream:
        line = raw.decode(errors="replace").rstrip()
        if not line:
            continue
        said.append(line)
        log.write(line)
        progress.output(line)
        for k, (prefix, words) in enumerate(STEPS):
            if line.startswith(prefix) and k + 1 > step:
                step = k + 1
                progress.detail(f"step {step} of {len(STEPS)}: {words}")


def _import(stream: IO[bytes], changes: list[str]) -> str | None:
    """Import the tar stream, untagged. Returns the new image's id (None if Docker gave
    none)."""
    api = docker_api.client().api
    try:
        out = api.import_image_from_stream(stream, changes=changes)
    except docker.errors.APIError as exc:
        raise RuntimeProblem(f"docker import failed: {exc.explanation or exc}") from None
    except docker_api.CONNECTION_ERRORS:
        raise docker_api.lost_connection("importing the node base") from None
    image_id = None
    for line in str(out).splitlines():
        try:
            doc: Any = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and "error" in doc:
            raise RuntimeProblem(f"docker import failed: {doc['error']}")
        status = doc.get("status", "") if isinstance(doc, dict) else ""
        if isinstance(status, str) and status.startswith("sha256:"):
            image_id = status
    return image_id


def _remove(image_id: str) -> None:
    try:
        docker_api.client().images.remove(image_id, force=True)
    except Exception:  # gone already, or the daemon went away: prune finds it later
        pass


def kill_group(proc: subprocess.Popen[Any]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def apt_sources(suite: str) -> str:
    """Debian sources for mmdebstrap: this machine's own, when it is a Debian of our suite.

    Returns deb822 text; falls back to deb.debian.org when the machine's
    sources do not name the suite (another distribution, another release).
    """
    entries = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for stanza in text.split("\n\n"):
                fields = _deb822(stanza)
                suites = fields.get("suites", "").split()
                if "deb" in fields.get("types", "").split() and any(
                        s.startswith(suite) for s in suites) and fields.get("uris"):
                    entries.append(_stanza(fields))
        elif path.suffix == ".list" or path.name == "sources.list":
            entries += _one_line_entries(text, suite)
    if not entries:
        entries.append(f"Types: deb\nURIs: {DEBIAN_MIRROR}\nSuites: {suite} {suite}-updates\n"
                       "Components: main\n")
    return "\n".join(entries)


def _one_line_entries(text: str, suite: str) -> list[str]:
    entries = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) >= 3 and parts[0] == "deb":
            opts = []
            while parts[1].startswith("["):
                opts.append(parts.pop(1))
                if opts[-1].endswith("]"):
                    break
            uri, dist, comps = parts[1], parts[2], parts[3:]
            if dist.startswith(suite):
                entries.append(f"Types: deb\nURIs: {uri}\nSuites: {dist}\n"
                               f"Components: {' '.join(comps) or 'main'}\n")
    return entries


def _deb822(stanza: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = None
    for line in stanza.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line[0].isspace() and key:
            fields[key] += " " + line.strip()
            continue
        name, _, value = line.partition(":")
        key = name.strip().lower()
        fields[key] = value.strip()
    return fields


def _stanza(fields: dict[str, str]) -> str:
    keep = ("types", "uris", "suites", "components", "signed-by")
    names = {"types": "Types", "uris": "URIs", "suites": "Suites", "components": "Components",
             "signed-by": "Signed-By"}
    return "".join(f"{names[k]}: {fields[k]}\n" for k in keep if k in fields)

