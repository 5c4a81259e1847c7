"""convert/ holds one module per flavor behind a registry (DESIGN.md §2). Its modules share only public
names, and their imports — at the top or inside functions, found with ast — form no circle: a flavor
module that reached back into the registry made 14 modules one knot that no module could be read or
tested without."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONVERT = ROOT / "packager" / "convert"
PACKAGE = "mpack.packager.convert"
OURS = ("mpack.packager", "mpack.infra", "mpack.handlers")


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import in the file, relative ones made absolute."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = PACKAGE.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module) if part)
            found.append((node.lineno, module, [alias.name for alias in node.names]))
    return found


def module_graph(folder: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same folder it imports (``from package import module`` included)."""
    modules = {f"{PACKAGE}.{path.stem}": path for path in folder.glob("*.py") if path.stem != "__init__"}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for _, module, names in imports(path):
            targets |= {module} | {f"{module}.{n}" for n in names}
        graph[name] = (targets & modules.keys()) - {name}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """One circle of imports, as the modules along it, or [] when there is none."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target) :] + [target]
            if target not in state and (found := visit(target, path + [target])):
                return found
        state[node] = "done"
        return []

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return []


def private_imports(folder: Path) -> list[str]:
    """``from mpack... import _name``, and ``module._name`` where ``module`` was imported from mpack."""
    offences = []
    for path in sorted(folder.glob("*.py")):
        bound = set()  # names the file binds to mpack's modules and objects
        for line, module, names in imports(path):
            if module.startswith(OURS):
                offences += [f"{path.name}:{line} imports {name} from {module}" for name in names if _private(name)]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(OURS) or isinstance(node, ast.ImportFrom) and node.level:
                bound |= {alias.asname or alias.name for alias in node.names}
            elif isinstance(node, ast.Import):
                bound |= {alias.asname or alias.name.split(".")[0] for alias in node.names if alias.name.startswith(OURS)}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                base = node.value
                while isinstance(base, ast.Attribute):
                    base = base.value
                if isinstance(base, ast.Name) and base.id in bound:
                    offences.append(f"{path.name}:{node.lineno} reads {ast.unparse(node)}")
    return offences


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_convert_modules_share_no_private_names():
    offences = private_imports(CONVERT)
    assert not offences, "make these public where they are owned:\n" + "\n".join(offences)


def test_convert_modules_import_each_other_without_a_circle():
    found = cycle(module_graph(CONVERT))
    assert not found, "import circle: " + " -> ".join(name.rsplit(".", 1)[1] for name in found)


def test_the_checks_find_what_they_forbid(tmp_path):
    """The walkers themselves: a private name, a module's private attribute and a deferred circle are caught."""
    (tmp_path / "a.py").write_text("from mpack.packager.convert.b import _hidden\n")
    (tmp_path / "b.py").write_text("def f():\n    from mpack.packager.convert import c\n    return c._other\n")
    (tmp_path / "c.py").write_text("import mpack.packager.convert.a\n")
    assert [o.split(" ", 1)[1] for o in private_imports(tmp_path)] == ["imports _hidden from mpack.packager.convert.b", "reads c._other"]
    assert cycle(module_graph(tmp_path)) == [f"{PACKAGE}.{m}" for m in ("a", "b", "c", "a")]
