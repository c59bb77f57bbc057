"""The shape of the package, read from its source with `ast`: no import circle between
fuzzer's modules (imports inside functions count; `if TYPE_CHECKING:` blocks do not, they
never run), no module over 600 lines, and an import inside a function only with a one-line
reason (a heavy or optional dependency, a process boundary) beside or above it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent / "fuzzer"
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(ROOT.rglob("*.py")):
        parts = p.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    out: list[ast.Import | ast.ImportFrom] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            out.append(node)
        todo += [c for c in ast.iter_child_nodes(node) if not _type_checking(c)]
    return out


def import_graph() -> nx.DiGraph:
    mods = _modules()
    g = nx.DiGraph()
    g.add_nodes_from(mods)
    for name, path in mods.items():
        pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    up = pkg[:len(pkg) - node.level + 1]
                    base = ".".join([*up, *([node.module] if node.module else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                           for a in node.names]
            g.add_edges_from((name, t) for t in targets if t in mods and t != name)
    return g


def test_the_import_graph_has_no_circle() -> None:
    g = import_graph()
    assert len(g) > 40 and g.number_of_edges() > 100  # the walk found the package's imports
    cycles = [c for c in nx.simple_cycles(g)][:5]
    assert not cycles, "import circles: " + "; ".join(" -> ".join([*c, c[0]]) for c in cycles)


def test_the_walk_sees_a_circle_when_there_is_one() -> None:
    g = import_graph()
    g.add_edge("fuzzer.case", "fuzzer.campaign")  # campaign imports case: now a circle
    assert any("fuzzer.case" in c for c in nx.simple_cycles(g))


def test_no_module_is_over_600_lines() -> None:
    long = {str(p.relative_to(ROOT.parent)): n for p in _modules().values()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def _local_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    return [node for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
            for node in ast.walk(fn) if isinstance(node, ast.Import | ast.ImportFrom)]


def _has_reason(lines: list[str], node: ast.stmt) -> bool:
    """A comment on the import's lines, or above the block of imports it belongs to."""
    if any("#" in lines[i - 1] for i in range(node.lineno, (node.end_lineno or node.lineno) + 1)):
        return True
    k = node.lineno - 2
    while k >= 0:
        text = lines[k].strip()
        if text.startswith("#") or (text.split("#")[0].rstrip().endswith(":") and "#" in text):
            return True
        if not (text.startswith(("import ", "from ", ")")) or text.endswith(",") or not text):
            return False
        k -= 1
    return False


def test_every_import_inside_a_function_says_why() -> None:
    bare = []
    for path in _modules().values():
        text = path.read_text()
        lines = text.splitlines()
        bare += [f"{path.relative_to(ROOT.parent)}:{n.lineno}"
                 for n in _local_imports(ast.parse(text)) if not _has_reason(lines, n)]
    assert not bare, f"function-local imports without a reason: {bare}"


ARCHITECTURE = ROOT.parent / "docs" / "architecture.md"
_NAMED = re.compile(r"`(fuzzer/[\w/]+\.py)`")


def test_the_module_map_names_every_module_and_only_those() -> None:
    """docs/architecture.md lists every module of fuzzer/ by concept, one line each: a new
    module without its line fails here, and so does a line whose module is gone."""
    tree = {str(p.relative_to(ROOT.parent)) for p in _modules().values()}
    named = set(_NAMED.findall(ARCHITECTURE.read_text()))
    assert len(tree) > 80  # the walk found the package, subpackages included
    assert not tree - named, f"modules missing from docs/architecture.md: {sorted(tree - named)}"
    assert not named - tree, f"docs/architecture.md names modules not in fuzzer/: " \
                             f"{sorted(named - tree)}"
