"""The layers of the package and its import graph (docs/architecture.md).

Each module of ``src/immunotox`` belongs to one layer; a module may import its own layer and the
layers below, never a layer above, and no import cycle may join two modules. The graph is read
from the source with :mod:`ast` (every ``import``, including the ones inside functions and under
``TYPE_CHECKING``, and ``importlib.import_module`` or ``__import__`` of a literal name), so a
failure names the importing file, its line and the imported module.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "immunotox"

# Lowest first. A module belongs to the layer of the longest prefix that names it; a layer of
# several columns holds parts that sit side by side and do not import each other. Names of
# modules other branches are adding (messages, handouts, analysis) are placed already. The
# FastAPI dependencies (service/deps.py) and problem details (service/problems.py) stay in the
# service layer: the API and the web UI share them.
LAYERS: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = (
    (
        "foundations",
        (
            (
                "immunotox.errors",
                "immunotox.units",
                "immunotox.sources",
                "immunotox.ruledata",
                "immunotox.plausibility",
                "immunotox.jurisdiction",
                "immunotox.handouts",
                "immunotox.findings",
                "immunotox.messages",
                "immunotox.result",
                "immunotox.vocabulary",
                "immunotox.messages",
            ),
        ),
    ),
    ("scales and catalogue", (("immunotox.scales", "immunotox.catalogue", "immunotox"),)),
    (
        "domain engines",
        (
            (
                "immunotox.risk",
                "immunotox.management",
                "immunotox.pathway",
                "immunotox.timeline",
                "immunotox.simulate",
                "immunotox.analysis",
                "immunotox.standards",
                "immunotox.handouts",
                "immunotox.labs",
            ),
        ),
    ),
    ("fhir and service use cases", (("immunotox.fhir", "immunotox.service"),)),
    (
        "service API and web UI",
        (
            ("immunotox.service.app", "immunotox.service.routes"),
            ("immunotox.web",),
        ),
    ),
    ("app factory", (("immunotox.app",),)),
    ("command line", (("immunotox.cli", "immunotox.__main__"),)),
)

# Imports that break the contract today, each to be removed (then its entry deleted: the strict
# xfail below fails as soon as an import listed here is gone).
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.importer} imports {self.imported} ({self.path.relative_to(SRC.parent)}:{self.line})"


def _modules() -> dict[str, tuple[Path, bool]]:
    out: dict[str, tuple[Path, bool]] = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        out[".".join(parts)] = (path, is_package)
    return out


def _literal_import_module(node: ast.Call) -> str | None:
    f = node.func
    named = (isinstance(f, ast.Attribute) and f.attr == "import_module") or (
        isinstance(f, ast.Name) and f.id in ("import_module", "__import__")
    )
    if named and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        return node.args[0].value
    return None


def import_graph() -> list[Import]:
    """Every import of a module of the package by a module of the package."""
    modules = _modules()
    edges: list[Import] = []
    for name, (path, is_package) in modules.items():
        here = name.split(".") if is_package else name.split(".")[:-1]

        def add(target: str, line: int, *, name: str = name, path: Path = path) -> None:
            while target not in modules and "." in target:  # a name inside a module
                target = target.rsplit(".", 1)[0]
            if target in modules and target != name:
                edges.append(Import(name, target, path, line))

        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == PACKAGE:
                        add(alias.name, node.lineno)
            elif isinstance(node, ast.ImportFrom):
                base = here[: len(here) - node.level + 1] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                if module.split(".")[0] != PACKAGE:
                    continue
                for alias in node.names:  # ``from pkg import submodule`` imports the submodule
                    sub = f"{module}.{alias.name}"
                    add(sub if sub in modules else module, node.lineno)
            elif isinstance(node, ast.Call):
                target = _literal_import_module(node)
                if target is not None and target.split(".")[0] == PACKAGE:
                    add(target, node.lineno)
    return edges


def layer_of(module: str) -> tuple[int, int] | None:
    """(layer index, column index) of ``module``: the longest listed prefix decides (the
    package itself, ``immunotox``, names only its ``__init__``)."""
    best: tuple[int, int, int] | None = None
    for i, (_name, columns) in enumerate(LAYERS):
        for j, prefixes in enumerate(columns):
            for p in prefixes:
                inside = module == p or (p != PACKAGE and module.startswith(p + "."))
                if inside and (best is None or len(p) > best[0]):
                    best = (len(p), i, j)
    return None if best is None else (best[1], best[2])


def _layer_name(module: str) -> str:
    where = layer_of(module)
    assert where is not None
    return LAYERS[where[0]][0]


def layer_violations(edges: list[Import]) -> list[tuple[Import, str]]:
    """Imports of a higher layer, or of another column of the same layer, with the reason."""
    out: list[tuple[Import, str]] = []
    for e in edges:
        a, b = layer_of(e.importer), layer_of(e.imported)
        assert a is not None and b is not None
        if b[0] > a[0]:
            out.append((e, f"layer '{_layer_name(e.importer)}' may not import '{_layer_name(e.imported)}'"))
        elif b[0] == a[0] and b[1] != a[1]:
            why = f"'{e.importer}' and '{e.imported}' sit side by side and may not import each other"
            out.append((e, why))
    return out


def cycles(edges: list[Import]) -> list[list[Import]]:
    """The import cycles: for each strongly connected group of modules, the imports inside it."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.importer, set()).add(e.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [
        sorted((e for e in edges if e.importer in g and e.imported in g), key=str)
        for g in sorted(groups, key=sorted)
    ]


@functools.cache
def _problems() -> dict[tuple[str, str], str]:
    edges = import_graph()
    out = {(e.importer, e.imported): f"{e}: {why}" for e, why in layer_violations(edges)}
    for group in cycles(edges):
        between = ", ".join(sorted({e.importer for e in group}))
        for e in group:
            out.setdefault((e.importer, e.imported), f"{e}: closes an import cycle between {between}")
    return out


def test_every_module_belongs_to_a_layer() -> None:
    unplaced = sorted(m for m in _modules() if layer_of(m) is None)
    assert not unplaced, f"modules in no layer of tests/test_layers.py LAYERS: {unplaced}"


def test_no_import_goes_up_a_layer_or_closes_a_cycle() -> None:
    found = _problems()
    new = sorted(msg for key, msg in found.items() if key not in KNOWN_VIOLATIONS)
    assert not new, "imports against the layer contract:\n" + "\n".join(new)


def test_no_known_violation_is_left() -> None:
    """The contract holds with no exception: an exception listed again must name its import and fail here
    until it is removed."""
    assert not KNOWN_VIOLATIONS, "known layer violations are listed: remove them, do not list them"
    assert not _problems()


def test_the_checker_sees_an_upward_import_and_a_cycle() -> None:
    """The contract catches what it is for: a fake upward import and a fake cycle are named."""
    fake = [
        Import("immunotox.units", "immunotox.timeline._run", SRC / PACKAGE / "units.py", 3),
        Import("immunotox.timeline._a", "immunotox.timeline._b", SRC / PACKAGE / "timeline" / "_a.py", 5),
        Import("immunotox.timeline._b", "immunotox.timeline._a", SRC / PACKAGE / "timeline" / "_b.py", 7),
        Import("immunotox.web.routes", "immunotox.service.routes.events", SRC / PACKAGE / "web/routes.py", 9),
    ]
    bad = [f"{e}: {why}" for e, why in layer_violations(fake)]
    assert bad == [
        "immunotox.units imports immunotox.timeline._run (src/immunotox/units.py:3): "
        "layer 'foundations' may not import 'domain engines'",
        "immunotox.web.routes imports immunotox.service.routes.events (src/immunotox/web/routes.py:9): "
        "'immunotox.web.routes' and 'immunotox.service.routes.events' sit side by side and may not import "
        "each other",
    ]
    assert [[str(e) for e in c] for c in cycles(fake)] == [
        [
            "immunotox.timeline._a imports immunotox.timeline._b (src/immunotox/timeline/_a.py:5)",
            "immunotox.timeline._b imports immunotox.timeline._a (src/immunotox/timeline/_b.py:7)",
        ]
    ]


def test_tests_import_the_project_directly() -> None:
    """``importorskip`` is for optional third-party packages: a broken module of the project
    must fail its tests, not skip them."""
    found = []
    for path in sorted((SRC.parent / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "importorskip"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and str(node.args[0].value).split(".")[0] == PACKAGE
            ):
                where = f"{path.relative_to(SRC.parent)}:{node.lineno}"
                found.append(f"{where} importorskip({node.args[0].value!r})")
    assert not found, "import the project's modules directly:\n" + "\n".join(found)


# A citation names a primary source (authors, year, DOI, section), never a file outside the
# repository: the project's working notes and the machine's folders are not shipped. A bare section
# tag such as "[§8.14]" names no source (it pointed into those notes): cite the source or write [D].
OUTSIDE = re.compile(
    r"clinical[- ]reference|référence clinique|perf[- ]spike|performance spike|shared/|/work/|/home/|/root/"
    r"|\[§\d",
    re.IGNORECASE,
)
TEXT_SUFFIXES = {".py", ".toml", ".md", ".txt", ".cfg", ".html", ".js", ".css", ".po", ".sql", ".ini"}


def test_no_citation_of_a_file_outside_the_repository() -> None:
    root = SRC.parent
    files = [root / "README.md", root / "pyproject.toml", root / "Makefile"]
    for folder in ("src", "docs", "tests", "benchmarks"):
        files += [p for p in (root / folder).rglob("*") if p.suffix in TEXT_SUFFIXES and p.is_file()]
    this = Path(__file__).resolve()
    found = [
        f"{path.relative_to(root)}:{n}: {line.strip()[:120]}"
        for path in sorted(files)
        if path.resolve() != this
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not found, "cite the primary source instead of a file outside the repository:\n" + "\n".join(found)


# The use cases (and the problem details they raise) import no web framework, directly or through
# another module of the package: the HTTP mapping sits one layer up (service/routes/_problems.py).
FRAMEWORK_FREE = ("immunotox.service.usecases", "immunotox.service.problems")
WEB_FRAMEWORKS = ("fastapi", "starlette")


def framework_imports(roots: tuple[str, ...]) -> list[str]:
    """``file:line imports framework`` for every module reachable from ``roots`` (by imports inside
    the package) that imports a web framework."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for e in import_graph():
        graph.setdefault(e.importer, set()).add(e.imported)
    todo = [m for m in modules if any(m == r or m.startswith(r + ".") for r in roots)]
    seen: set[str] = set()
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph.get(m, ()))
    out: list[str] = []
    for m in sorted(seen):
        path = modules[m][0]
        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            for n in names:
                if n.split(".")[0] in WEB_FRAMEWORKS:
                    out.append(f"{path.relative_to(SRC.parent)}:{node.lineno} ({m}) imports {n}")
    return out


def test_use_cases_import_no_web_framework() -> None:
    found = framework_imports(FRAMEWORK_FREE)
    assert not found, "the use-case layer reaches a web framework:\n" + "\n".join(found)


def test_the_framework_check_sees_a_framework_import() -> None:
    """The check is not vacuous: the API routes do import FastAPI, and it names the line."""
    found = framework_imports(("immunotox.service.routes._problems",))
    assert any(f.startswith("src/immunotox/service/routes/_problems.py:") and "fastapi" in f for f in found)
