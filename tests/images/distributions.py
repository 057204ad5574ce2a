"""What Python code imports and which installed distributions provide it: can an image that
installs a given list of packages import a given set of modules?

Read from the source (every import statement, function-level ones included) and from the
metadata of this virtualenv, which holds the same pins as the images.
"""

import ast
import sys
from collections.abc import Iterable
from functools import cache
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.images.dockerfile import ROOT

# Where first-party modules live, in sys.path order as the DAG processor sees them.
SOURCE_ROOTS = (ROOT / "plugins", ROOT / "dags")
FIRST_PARTY = ("videostyle", "videostyle_airflow")


def requirement_names(requirements_in: Path) -> list[str]:
    """The package names of a names-only requirements file (comments dropped)."""
    names: list[str] = []
    for line in requirements_in.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            names.append(canonicalize_name(Requirement(text).name))
    return names


def pins(requirements_txt: Path) -> dict[str, str]:
    """name -> exact version of every `name==version` line."""
    found: dict[str, str] = {}
    for line in requirements_txt.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text and not text.startswith("-"):
            req = Requirement(text)
            (spec,) = req.specifier
            assert spec.operator == "==", f"{text!r} is not an exact pin"
            found[canonicalize_name(req.name)] = spec.version
    return found


def closure(names: Iterable[str]) -> set[str]:
    """The distributions pip installs for `names`: them and their dependencies, recursively."""
    seen: set[str] = set()
    todo = [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
    return seen


def _module_file(module: str) -> Path | None:
    parts = module.split(".")
    for root in SOURCE_ROOTS:
        for candidate in (
            root.joinpath(*parts, "__init__.py"),
            root.joinpath(*parts[:-1], f"{parts[-1]}.py"),
        ):
            if candidate.is_file():
                return candidate
    return None


_TYPE_CHECKING = ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _imports(path: Path) -> set[str]:
    """What `path` imports when it runs: `if TYPE_CHECKING:` blocks left out."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in _TYPE_CHECKING:
            node.body = []
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def third_party_imports(files: Iterable[Path]) -> set[str]:
    """Modules outside the standard library that `files` import, following first-party imports
    (videostyle, videostyle_airflow) into their own files."""
    todo = list(files)
    seen: set[Path] = set()
    outside: set[str] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _imports(path):
            top = module.split(".")[0]
            if top in FIRST_PARTY:
                if (target := _module_file(module)) is not None:
                    todo.append(target)
                # videostyle.x.y also runs the __init__ files of its packages
                for n in range(1, module.count(".") + 1):
                    if (package := _module_file(".".join(module.split(".")[:n]))) is not None:
                        todo.append(package)
            elif top not in sys.stdlib_module_names:
                outside.add(module)
    return outside


@cache
def _top_level_providers() -> dict[str, set[str]]:
    return {
        top: {canonicalize_name(d) for d in dists}
        for top, dists in metadata.packages_distributions().items()
    }


def providing_distributions(module: str) -> set[str]:
    """Installed distributions that provide `module`. Airflow providers share the `airflow`
    namespace, so `airflow.providers.a.b...` maps to its own apache-airflow-providers-a-b."""
    parts = module.split(".")
    if parts[:2] == ["airflow", "providers"] and len(parts) > 2:
        for n in range(len(parts), 2, -1):
            name = canonicalize_name("apache-airflow-providers-" + "-".join(parts[2:n]))
            try:
                metadata.distribution(name)
            except metadata.PackageNotFoundError:
                continue
            return {name}
    return _top_level_providers().get(parts[0], set())
