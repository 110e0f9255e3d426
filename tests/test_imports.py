"""The package's modules import one another without a circle, counting the imports inside functions too.

A circle is a design smell even when lazy imports keep it from failing at import time: the two modules
cannot be understood, tested or moved apart (issue 24 broke guidance → plotting → reverse → guidance and
metrics ↔ training; issue 25 bench ↔ speed).
"""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "keras_diffusion"


def module_name(path):
    parts = ("keras_diffusion",) + path.with_suffix("").relative_to(PACKAGE).parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name):
    relative = pathlib.Path(*name.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative / "__init__.py").is_file()


def import_graph():
    """{module: the package's modules it imports anywhere in its file}."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("keras_diffusion"):
                for alias in node.names:  # `from pkg import submodule` depends on the submodule, not on pkg
                    deps.add(f"{node.module}.{alias.name}" if is_module(f"{node.module}.{alias.name}") else node.module)
            elif isinstance(node, ast.Import):
                deps |= {alias.name for alias in node.names if alias.name.startswith("keras_diffusion")}
        graph[module_name(path)] = deps - {module_name(path)}
    return graph


def circles(graph):
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, found = {}, {}, [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while component[-1:] != [v]:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_circle():
    graph = import_graph()
    assert "keras_diffusion.reverse" in graph["keras_diffusion.plotting"]  # the graph sees imports inside functions
    assert circles(graph) == []
