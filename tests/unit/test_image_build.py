"""The node image build without Docker: mmdebstrap's command line, the steps shown from its
real output, the build log and estimates, the node layer's archive, and the tags."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from portlab.backend.docker import buildlog, image, nodelayer, rootfs
from portlab.views.progress import TerminalProgress

# What mmdebstrap 1.3.5 printed on stderr here for the node base (abridged: its other
# lines are dpkg's and apt's, which only the log keeps).
MMDEBSTRAP_SAID = """\
I: automatically chosen mode: root
I: chroot architecture amd64 is equal to the host's architecture
I: using /tmp/mmdebstrap.wMAgt4eLkz as tempdir
I: running apt-get update...
done
I: downloading packages with apt...
I: extracting archives...
I: installing essential packages...
Setting up libc6:amd64 (2.36-9+deb12u14) ...
I: installing remaining packages inside the chroot...
Setting up nmap (7.93+dfsg1-1) ...
I: cleaning package lists and apt cache...
I: creating tarball...
I: done
I: removing tempdir /tmp/mmdebstrap.wMAgt4eLkz...
I: success in 47.3196 seconds
"""


class Seen:
    def __init__(self) -> None:
        self.details: list[str] = []
        self.outputs: list[str] = []

    def note(self, text: str) -> None:
        pass

    def phase(self, title: str):  # type: ignore[no-untyped-def]
        raise AssertionError("not used")

    def detail(self, text: str) -> None:
        self.details.append(text)

    def output(self, text: str) -> None:
        self.outputs.append(text)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "portlab"


def test_mmdebstrap_command_line() -> None:
    argv = rootfs.argv("bookworm", image.packages(), image.excludes(),
                       image.NODE_DIR / "slim.sh", "-", Path("/tmp/x.sources"))
    assert argv[0] == "mmdebstrap"
    assert "--variant=essential" in argv  # no apt: the labs are sealed, it could fetch nothing
    assert "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr" in argv
    (include,) = [a for a in argv if a.startswith("--include=")]
    wanted = include.split("=", 1)[1].split(",")
    for tool in ("nmap", "tcpdump", "openssh-client", "openssh-server", "wireguard-tools",
                 "wireguard-go", "nftables", "iptables", "curl", "python3", "usr-is-merged"):
        assert tool in wanted
    assert f"--customize-hook=upload {image.NODE_DIR / 'slim.sh'} /tmp/portlab-slim.sh" in argv
    assert [a for a in argv if a.startswith("--dpkgopt=path-exclude=")] == [
        f"--dpkgopt={rule}" for rule in image.excludes()]
    assert argv[-3:] == ["bookworm", "-", "/tmp/x.sources"]


def test_excludes_leave_every_tool() -> None:
    rules = image.excludes()
    assert rules and all(r.startswith("path-exclude=/usr/") for r in rules)
    for kept in ("/usr/bin/", "/usr/sbin/", "/usr/share/nmap/nmap-service-probes",
                 "/usr/share/nmap/nmap-os-db", "/usr/share/nmap/scripts/",
                 "/usr/lib/python3.11/"):
        assert not any(kept.startswith(r.split("=", 1)[1].rstrip("*")) for r in rules), kept


def test_steps_in_words_from_mmdebstraps_output(cache: Path) -> None:
    seen = Seen()
    log = buildlog.BuildLog()
    stream = io.BytesIO(MMDEBSTRAP_SAID.encode())
    said: list[str] = []
    rootfs._follow(stream, said, log, seen)  # type: ignore[arg-type]
    log.close()
    assert seen.details == [
        "step 1 of 7: reading Debian's package lists",
        "step 2 of 7: downloading the packages",
        "step 3 of 7: unpacking the essential packages",
        "step 4 of 7: installing the essential packages",
        "step 5 of 7: installing nmap, tcpdump, WireGuard, OpenSSH, ...",
        "step 6 of 7: cleaning up",
        "step 7 of 7: handing the filesystem to Docker",
    ]
    lines = [x for x in MMDEBSTRAP_SAID.splitlines() if x]
    assert seen.outputs == lines == said  # every raw line: to --verbose and to the log
    logged = log.path.read_text().splitlines()
    assert log.path == cache / "image-build.log"
    assert [x.split(" ", 1)[1] for x in logged] == lines


def test_raw_output_only_with_verbose() -> None:
    out = io.StringIO()
    TerminalProgress(out).output("Setting up nmap (7.93+dfsg1-1) ...")
    assert out.getvalue() == ""
    TerminalProgress(out, verbose=True).output("Setting up nmap (7.93+dfsg1-1) ...")
    assert out.getvalue() == "    | Setting up nmap (7.93+dfsg1-1) ...\n"
    quiet = io.StringIO()
    TerminalProgress(quiet, quiet=True, verbose=True).output("x")
    assert quiet.getvalue() == ""


def test_estimates_are_last_times_duration(cache: Path) -> None:
    assert buildlog.estimate("base") == buildlog.DEFAULT_ESTIMATES["base"]
    buildlog.remember("base", 47.31)
    buildlog.remember("node", 1.8)
    assert buildlog.estimate("base") == 47.3 and buildlog.estimate("node") == 1.8
    assert buildlog.about(47.3) == "about 45 s"
    assert buildlog.about(1.8) == "a few seconds"
    assert buildlog.about(130) == "about 2 min"
    (cache / "image-build.json").write_text("not json")
    assert buildlog.estimate("base") == buildlog.DEFAULT_ESTIMATES["base"]


def test_log_falls_back_to_the_temp_folder(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # a file: no folder can be made in it
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    with buildlog.BuildLog() as log:
        log.write("hello")
    assert log.path == tmp_path / "tmp" / "image-build.log"
    assert log.path.read_text().endswith(" hello\n")


def test_node_layer_archive() -> None:
    data = nodelayer._archive(image.NODE_DIR, b"# Debian's own .bashrc\n")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        for tool in ("nodeinit.py", "probe.py", "serve.py"):
            m = members[f"usr/local/lib/portlab/{tool}"]
            assert m.isfile() and m.mode == 0o755
            f = tar.extractfile(m)
            assert f is not None and f.read() == (image.NODE_DIR / tool).read_bytes()
        assert members["usr/local/bin/portlab-probe"].linkname == "/usr/local/lib/portlab/probe.py"
        assert members["usr/local/bin/portlab-serve"].linkname == "/usr/local/lib/portlab/serve.py"
        assert members["run/sshd"].isdir()
        f = tar.extractfile(members["root/.bashrc"])
        assert f is not None
        bashrc = f.read()
    assert bashrc.startswith(b"# Debian's own .bashrc\n")
    assert bashrc.endswith((image.NODE_DIR / "bashrc").read_bytes())


def test_tags_follow_what_goes_in(monkeypatch: pytest.MonkeyPatch) -> None:
    node, base = image.node_tag(), image.base_tag()
    assert node.startswith("portlab/node:") and base.startswith("portlab/node-base:")
    monkeypatch.setattr(nodelayer, "RECIPE", nodelayer.RECIPE + " changed")
    assert image.node_tag() != node and image.base_tag() == base
    assert "slim.sh" in image.BASE_FILES  # what the base is trimmed with is part of its tag
    assert set(nodelayer.tools()) <= {p.name for p in image.NODE_DIR.iterdir()}
