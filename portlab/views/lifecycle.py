"""What `up`, `down` and `prune` say when they are done."""

from __future__ import annotations

from portlab.backend.base import Pruned, Removed
from portlab.runtime import Instance


def up_summary(inst: Instance, seconds: float) -> str:
    suffix = "" if inst.name == inst.lab_name else f" --instance {inst.name}"
    lines = [f"Lab '{inst.lab_name}' is up as instance '{inst.name}': {len(inst.nodes)} "
             f"nodes ready in {seconds:.1f}s."]
    for node, interfaces in inst.interfaces().items():
        addrs = ", ".join(f"{name} {address}" for name, address in interfaces.items())
        lines.append(f"  {node:<10} {addrs}")
    steps = [
        (f"portlab show {inst.lab_name}{suffix}", "the story, the network, your tasks"),
        (f"portlab shell NODE{suffix}", f"a root shell on a node (e.g. {sorted(inst.nodes)[0]})"),
        (f"portlab check{suffix}", "prove it works, with real traffic"),
        (f"portlab down {inst.lab_name}{suffix}", "remove it when you are done"),
    ]
    width = max(len(cmd) for cmd, _ in steps) + 3
    lines.append("Next:")
    lines += [f"  {cmd:<{width}}{what}" for cmd, what in steps]
    return "\n".join(lines)


def down_summary(removed: Removed | None, seconds: float) -> str:
    """What `down` removed, by name: the same words for `down` and `down --all`."""
    if removed is None or not (removed.instances or removed.containers or removed.networks):
        return "Nothing to remove: no portlab lab is up."
    labs = ", ".join(f"lab '{lab}'" + (f" (instance {name})" if name != lab else "")
                     for name, lab in sorted(removed.instances.items()))
    return (f"Removed {labs or 'the lab'}: {count(removed.containers, 'container')} and "
            f"{count(removed.networks, 'network')} in {seconds:.1f}s.")


def count(n: int, thing: str) -> str:
    return f"{n} {thing}" + ("" if n == 1 else "s")


def prune_summary(got: Pruned) -> str:
    verb = "Would remove" if got.dry_run else "Removed"
    lines = [f"{verb} {count(len(got.containers), 'container')} and "
             f"{count(len(got.networks), 'network')} "
             f"({count(len(got.instances), 'lab instance')}), "
             f"{count(len(got.images), 'image')} and "
             f"{count(len(got.leftovers), 'build leftover')}."]
    for title, items in (("containers", got.containers), ("networks", got.networks),
                         ("images", got.images), ("build leftovers", got.leftovers)):
        if items and (got.dry_run or title == "images"):
            lines.append(f"  {title}: {', '.join(items)}")
    if got.kept_images:
        lines.append(f"Kept {len(got.kept_images)} unused portlab images "
                     f"({', '.join(got.kept_images)}); `portlab prune --images` removes them.")
    return "\n".join(lines)
