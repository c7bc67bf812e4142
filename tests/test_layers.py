"""Layers: every package imports only its own layer or those below, and no two import each other.

A small walk over the syntax trees (`ast`) rather than import-linter: it reads the source without
importing it (no settings, no database), sees imports inside functions as well as at the top,
names the file and line of each offending import, and fits here without a new dependency to lock.
The layers are those of docs/architecture.md; a new top-level module must be given one below.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
ROOTS = ("bank", "consent", "points", "anonymize")

# Bottom to top. A unit is a top-level module or package of bank (bank.vault, bank.jobs), the
# bank package's own __init__ (bank), or a top-level package beside it (consent).
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "kernel",
        frozenset(
            {
                "bank",
                "bank.settings",
                "bank.db",
                "bank.http",
                "bank.crypto",
                "bank.logs",
                "bank.errors",
                "bank.jobs",
                "bank.audit",
                "bank.data",
                "bank.reference",
                "bank.workers",
                "bank.health",
                "bank.package",
                "bank.threads",
            }
        ),
    ),
    ("auth and identity", frozenset({"bank.auth", "bank.identity"})),
    ("vault", frozenset({"bank.vault"})),
    ("domain packages", frozenset({"consent", "points", "anonymize"})),
    ("resident pages", frozenset({"bank.mypage"})),
    (
        "composition root",
        frozenset({"bank.app", "bank.cli", "bank.demo", "bank.migrations", "bank.welcome"}),
    ),
)


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. bank.auth.store
    target: str  # the module imported, e.g. bank.identity.models
    path: str  # relative to the tree's root
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.module} imports {self.target}"


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(root: Path, roots: Iterable[str] = ROOTS) -> list[Import]:
    """Every import of a module of `roots` by a module of `roots`, at any depth in the file."""
    roots = tuple(roots)
    files = sorted(path for name in roots for path in (root / name).rglob("*.py"))
    known = {module_name(root, path) for path in files}
    found = []
    for path in files:
        module = module_name(root, path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _targets(node, package, known):
                if target.split(".")[0] in roots:
                    relative = path.relative_to(root).as_posix()
                    found.append(Import(module, target, relative, node.lineno))
    return list(dict.fromkeys(found))  # `from x import a, b` is one import of x


def _targets(node: ast.Import | ast.ImportFrom, package: str, known: set[str]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    if node.level:
        base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
        source = ".".join([*base, node.module] if node.module else base)
    else:
        source = node.module or ""
    for alias in node.names:
        # `from bank import reference` imports the module bank.reference.
        submodule = f"{source}.{alias.name}"
        yield submodule if submodule in known else source


def unit_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "bank" else parts[0]


def layer_of(layers: tuple[tuple[str, frozenset[str]], ...]) -> Mapping[str, int]:
    return {unit: index for index, (_name, units) in enumerate(layers) for unit in units}


def violations(
    found: Iterable[Import], layers: tuple[tuple[str, frozenset[str]], ...] = LAYERS
) -> list[str]:
    """What breaks the layering: upward imports, units in no layer, and cycles between units."""
    levels = layer_of(layers)
    problems: list[str] = []
    between = [item for item in found if unit_of(item.module) != unit_of(item.target)]
    for unit in sorted({unit_of(item.module) for item in found} - levels.keys()):
        problems.append(f"{unit} is in no layer: give it one in tests/test_layers.py")
    for item in between:
        low, high = levels.get(unit_of(item.module)), levels.get(unit_of(item.target))
        if low is not None and high is not None and high > low:
            problems.append(
                f"{item}: the {layers[low][0]} layer may not import the {layers[high][0]} layer"
            )
    graph: dict[str, set[str]] = {}
    for item in between:
        graph.setdefault(unit_of(item.module), set()).add(unit_of(item.target))
    for item in between:
        source, target = unit_of(item.module), unit_of(item.target)
        if source in _reachable(graph, target):
            problems.append(f"{item}: a cycle, {target} imports {source} in turn")
    return problems


def _reachable(graph: Mapping[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for following in graph.get(stack.pop(), set()) - seen:
            seen.add(following)
            stack.append(following)
    return seen


def test_every_package_imports_only_its_layer_and_below_without_cycles() -> None:
    found = imports(REPOSITORY)
    problems = violations(found)
    assert not problems, "\n".join(problems)


def test_the_walk_sees_the_imports_it_judges() -> None:
    # A walk that found nothing would pass vacuously: the vault's guard imports must be there.
    edges = {(unit_of(item.module), unit_of(item.target)) for item in imports(REPOSITORY)}
    assert ("bank.vault", "bank.auth") in edges
    assert ("bank.app", "bank.vault") in edges
    assert ("bank.vault", "bank.reference") in edges  # `from bank import reference`


def _write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_an_upward_import_inside_a_function_is_named_with_its_line(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "bank/__init__.py": "",
            "bank/settings.py": "import os\n\n\ndef load():\n    from bank.vault import keys\n",
            "bank/vault/__init__.py": "",
            "bank/vault/keys.py": "from bank.settings import load\n",
        },
    )
    problems = violations(imports(tmp_path))
    assert problems == [
        "bank/settings.py:5: bank.settings imports bank.vault.keys:"
        " the kernel layer may not import the vault layer",
        "bank/settings.py:5: bank.settings imports bank.vault.keys:"
        " a cycle, bank.vault imports bank.settings in turn",
        "bank/vault/keys.py:1: bank.vault.keys imports bank.settings:"
        " a cycle, bank.settings imports bank.vault in turn",
    ]


def test_two_packages_of_one_layer_importing_each_other_are_a_cycle(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "bank/__init__.py": "",
            "bank/auth/__init__.py": "",
            "bank/auth/store.py": "from ..identity.models import Account\n",
            "bank/identity/__init__.py": "",
            "bank/identity/models.py": "class Account: ...\n",
            "bank/identity/pages.py": "def f():\n    import bank.auth.store\n",
        },
    )
    problems = violations(imports(tmp_path))
    assert problems == [
        "bank/auth/store.py:1: bank.auth.store imports bank.identity.models:"
        " a cycle, bank.identity imports bank.auth in turn",
        "bank/identity/pages.py:2: bank.identity.pages imports bank.auth.store:"
        " a cycle, bank.auth imports bank.identity in turn",
    ]


def test_one_way_between_packages_of_one_layer_is_allowed(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "bank/__init__.py": "",
            "bank/auth/__init__.py": "",
            "bank/auth/store.py": "from bank import settings\n",
            "bank/settings.py": "",
            "bank/identity/__init__.py": "",
            "bank/identity/pages.py": "from bank.auth import store\n",
            "consent/__init__.py": "from bank.identity import pages\n",
        },
    )
    assert violations(imports(tmp_path)) == []


def test_a_module_in_no_layer_is_named(tmp_path: Path) -> None:
    _write(tmp_path, {"bank/__init__.py": "", "bank/newcomer.py": "import bank\n"})
    assert violations(imports(tmp_path)) == [
        "bank.newcomer is in no layer: give it one in tests/test_layers.py"
    ]
