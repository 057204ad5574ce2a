"""Reading Dockerfiles and .dockerignore without Docker: just enough for the image tests."""

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    flags: dict[str, str]  # --from=sources -> {"from": "sources"}; repeated --mount flags joined
    args: str  # the rest of the instruction, continuation lines joined
    stage: str  # the stage's name (AS ...), or its index


def instructions(dockerfile: Path) -> list[Instruction]:
    """The instructions in order; comments dropped, continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for line in dockerfile.read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = (pending + line).strip()
        pending = ""
        if text:
            logical.append(text)
    result = []
    stage = ""
    for count, text in enumerate(logical):
        keyword, _, rest = text.partition(" ")
        flags: dict[str, str] = {}
        while rest.lstrip().startswith("--"):
            flag, _, rest = rest.lstrip()[2:].partition(" ")
            name, _, value = flag.partition("=")
            flags[name] = f"{flags[name]} {value}" if name in flags else value
        keyword = keyword.upper()
        if keyword == "FROM":
            words = rest.split()
            stage = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(count)
        result.append(Instruction(keyword, flags, rest.strip(), stage))
    return result


def stages(dockerfile: Path) -> dict[str, str]:
    """Stage name -> the image it starts FROM."""
    return {i.stage: i.args.split()[0] for i in instructions(dockerfile) if i.keyword == "FROM"}


def context_sources(dockerfile: Path) -> list[str]:
    """Paths a build reads from its context: COPY sources and RUN bind-mount sources."""
    sources = []
    for i in instructions(dockerfile):
        if i.keyword in ("COPY", "ADD") and "from" not in i.flags:
            sources.extend(shlex.split(i.args)[:-1])
        for mount in i.flags.get("mount", "").split():
            options = dict(part.split("=", 1) for part in mount.split(","))
            if options.get("type") == "bind" and "from" not in options:
                sources.append(options["source"])
    return sources


def _pattern(glob: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex over slash paths."""
    out = ""
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif glob.startswith("**", i):
            out, i = out + ".*", i + 2
        elif glob[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif glob[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(glob[i]), i + 1
    return re.compile(out)


def dockerignore_rules(root: Path = ROOT) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in (root / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        rules.append((include, _pattern(line.lstrip("!").strip("/"))))
    return rules


def in_build_context(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker sends `path` (relative, slash-separated): the last rule matching the path
    or one of its parent folders decides, as in Docker's own matcher."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    sent = True
    for include, pattern in rules:
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            sent = include
    return sent
