"""Read a submission and choose what of it may run: imports, definitions, constant assignments.

A submission is a list of units, each a piece of source with a name that
error messages quote: the whole file for a .py, one unit a code cell for a
.ipynb, one a definition for ``check`` in a notebook. The grader runs only
what a test would import: function and class definitions, constant
assignments (no call on the right-hand side) and the imports those need.
Demo code, plots and training at the top level never run, and neither does
an import nothing kept refers to (the demo's ``from keras_diffusion.plotting
import ...`` would load TensorFlow for nothing).
"""

import ast
import builtins
import dataclasses
import json
import re
import threading

PACKAGE = "keras_diffusion"
_MAGIC = re.compile(r"^\s*[%!]")
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_PARSE_LOCK = threading.Lock()


@dataclasses.dataclass
class Unit:
    name: str  # "alice.py", "alice.ipynb cell 4": what messages quote
    source: str
    keep: list = dataclasses.field(default_factory=list)  # indices of the top-level statements that run


@dataclasses.dataclass
class Plan:
    """What the child runs, what it skipped, and where the submission refers to keras_diffusion."""

    units: list
    future: list  # __future__ features the kept code asks for
    skipped: dict  # name -> where a skipped statement binds it (for NameError hints)
    package_uses: object  # PackageUses: .get(name) -> the keras_diffusion names it reaches
    problems: list  # cells that could not be parsed, and the like
    imports: list = dataclasses.field(default_factory=list)  # top-level modules the kept imports load

    def payload(self):
        units = [{"name": u.name, "source": u.source, "keep": u.keep} for u in self.units if u.keep]
        return json.dumps({"units": units, "future": self.future})


def read_text(text, path):
    """The units of a .py or .ipynb submission's text, and problems found while reading (a cell skipped, ...)."""
    if path.suffix == ".ipynb":
        return notebook_units(text, path.name)
    return [Unit(path.name, text)], []


def notebook_units(text, name):
    """One unit per code cell; IPython's %magic and !shell lines become blank lines, %%cell magics drop the cell.
    Anything that is not a notebook (cells not a list, a source of numbers, JSON nested too deep) is a
    SubmissionError, never a crash."""
    try:
        notebook = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise SubmissionError(f"{name} is not a Jupyter notebook (nbformat 4): {type(error).__name__}") from None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        raise SubmissionError(f"{name} is not a Jupyter notebook (nbformat 4): it has no list of cells")
    units, problems = [], []
    for number, cell in enumerate(cells, 1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(line, str) for line in source):
            source = "".join(source)
        elif not isinstance(source, str):
            problems.append(f"{name} cell {number}: its source is not text; skipped")
            continue
        if source.lstrip().startswith("%%"):
            problems.append(f"{name} cell {number} starts with a %% cell magic: skipped")
            continue
        lines = ["" if _MAGIC.match(line) else line for line in source.split("\n")]
        units.append(Unit(f"{name} cell {number}", "\n".join(lines)))
    return units, problems


class SubmissionError(ValueError):
    """The submission cannot be read at all; the grade is 0 and this is its error."""


def plan(units, one_module=False):
    """Decide which statements run. ``one_module``: a syntax error anywhere stops all (a .py file), not just its cell."""
    parsed, problems = [], []
    for unit in units:
        try:
            parsed.append((unit, parse(unit.source, unit.name).body))
        except SyntaxError as error:
            where = unit.name + (f", line {error.lineno}" if error.lineno else "")
            if one_module:
                raise SubmissionError(f"SyntaxError ({where}): {error.msg}") from None
            problems.append(f"SyntaxError ({where}): {error.msg}; that cell was skipped")
        except (ValueError, RecursionError, MemoryError) as error:  # null bytes, absurdly deep nesting
            if one_module:
                raise SubmissionError(f"{unit.name} cannot be parsed: {type(error).__name__}") from None
            problems.append(f"{unit.name} cannot be parsed ({type(error).__name__}); that cell was skipped")
    # an assignment runs only if what it reads is bound by something that runs: `alpha_bars = schedule.alpha_bars`
    # after a skipped `schedule = NoiseSchedule.cosine(200)` is demo code too
    bound = set(dir(builtins))
    for _, body in parsed:
        bound |= {n for node in body if isinstance(node, _DEFINITIONS + (ast.Import, ast.ImportFrom)) for n in _bound_names(node)}
    candidates, skipped = [], {}
    for unit, body in parsed:
        for index, node in enumerate(body):
            if _runs(node) and (not isinstance(node, (ast.Assign, ast.AnnAssign)) or _loaded_names(node.value) <= bound):
                candidates.append((unit, index, node))
                bound |= _bound_names(node)
            elif not _is_docstring(node):
                for name in _bound_names(node):
                    skipped.setdefault(name, f"{unit.name}, line {node.lineno}")
    needed = set()
    for _, _, node in candidates:
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            needed |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    future, kept = [], []
    for unit, index, node in candidates:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            future += [alias.name for alias in node.names]
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and not (_star(node) or set(_import_names(node)) & needed):
            continue  # an import only the skipped demo code uses
        unit.keep.append(index)
        kept.append(node)
    for name in {n for node in kept for n in _bound_names(node)}:
        skipped.pop(name, None)
    imports = sorted({_top_module(n, m) for n in kept if isinstance(n, (ast.Import, ast.ImportFrom)) for m in _modules(n)} - {"", "__future__"})
    return Plan([u for u, _ in parsed], future, skipped, package_uses(kept), problems, imports)


def parse(source, filename="<unknown>"):
    """ast.parse, one thread at a time: CPython 3.11's parser keeps a recursion counter that threads share
    (grade_folder's --jobs would fail with "AST constructor recursion depth mismatch")."""
    with _PARSE_LOCK:
        return ast.parse(source, filename)


def _runs(node):
    """Imports, definitions, and assignments to plain names of values that call nothing."""
    if isinstance(node, _DEFINITIONS + (ast.Import, ast.ImportFrom)):
        return True
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        plain = all(isinstance(n, (ast.Name, ast.Tuple, ast.List, ast.Store)) for t in targets for n in ast.walk(t))
        return plain and not _calls_something(node.value)
    return False


def _calls_something(node):
    return any(isinstance(n, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)) for n in _outside_lambdas(node))


def _loaded_names(node):
    """Names an expression reads, outside lambda bodies (those run later, if ever)."""
    return {n.id for n in _outside_lambdas(node) if isinstance(n, ast.Name)}


def _outside_lambdas(node):
    """Every node of an expression except those inside a lambda; iterative, as a student's expression may be deep."""
    stack = [node]
    while stack:
        node = stack.pop()
        if not isinstance(node, ast.Lambda):
            yield node
            stack.extend(ast.iter_child_nodes(node))


def _is_docstring(node):
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _star(node):
    return isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names)


def _import_names(node):
    """Names an import binds, each mapped to what it imports: {'np': 'numpy', 'q': 'keras_diffusion.forward.q_sample'}."""
    if isinstance(node, ast.Import):
        return {(a.asname or a.name.split(".")[0]): (a.name if a.asname else a.name.split(".")[0]) for a in node.names}
    module = "." * node.level + (node.module or "")
    return {(a.asname or a.name): f"{module}.{a.name}" for a in node.names if a.name != "*"}


def _modules(node):
    return [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]


def _top_module(node, module):
    return "" if isinstance(node, ast.ImportFrom) and node.level else module.split(".")[0]


def _bound_names(node):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return set(_import_names(node))
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def package_uses(nodes):
    """For each top-level name, the keras_diffusion names its code reaches, directly or through other definitions.

    The child's guard catches calls as they happen; this reads the source, in
    the grader's own process, so no trick inside the child can hide a plain
    ``from keras_diffusion.forward import q_sample`` used by the graded function.
    """
    imported = {}
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imported.update({k: v for k, v in _import_names(node).items() if v.split(".")[0] == PACKAGE})
    direct, refs = {}, {}
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        names, found = set(), set()
        for inner in ast.walk(node):
            if isinstance(inner, ast.Name):
                names.add(inner.id)
                if inner.id in imported:
                    found.add(imported[inner.id])
            elif isinstance(inner, (ast.Import, ast.ImportFrom)):
                found |= {v for v in _import_names(inner).values() if v.split(".")[0] == PACKAGE}
            elif isinstance(inner, ast.Constant) and isinstance(inner.value, str) and PACKAGE in inner.value:
                found.add(inner.value[:200])  # importlib.import_module("keras_diffusion.forward")
        for name in _bound_names(node):
            direct.setdefault(name, set()).update(found)
            refs.setdefault(name, set()).update(names)
    return PackageUses(direct, refs)


@dataclasses.dataclass
class PackageUses:
    """Which keras_diffusion names each top-level name reaches, through the helpers it refers to."""

    direct: dict  # name -> the package names its own code mentions
    refs: dict  # name -> the names its code refers to

    def get(self, start, default=()):
        """One search from ``start``, linear in the size of the reference graph (asked for the graded names only)."""
        seen, stack, found = {start}, [start], set()
        while stack:
            name = stack.pop()
            found |= self.direct.get(name, set())
            for other in self.refs.get(name, ()):
                if other not in seen and other in self.refs:
                    seen.add(other)
                    stack.append(other)
        return sorted(found) if found else default
