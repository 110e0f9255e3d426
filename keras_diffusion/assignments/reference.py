"""Is a submission a copy of the shipped reference solution?

The solutions ship in every student's copy of the package (``sources/``), so
a copy is easy to hand in. Two definitions are the same here when their
syntax trees are, once every local name (arguments, variables, helpers the
code calls) is replaced by its order of first appearance and docstrings are
dropped: renaming variables and rewording docstrings does not hide a copy;
attributes (``np.linspace``), constants and the structure stay as written.

Short functions are written the same way by honest students
(``return np.linspace(beta_start, beta_end, timesteps)`` is the natural
answer, and so is the 84-node cosine schedule of Nichol & Dhariwal), so a
copy is flagged only when every function of the assignment matches the
reference, or when the matching definitions together hold ``LONG`` syntax
nodes or more, more than independent identical code makes believable (the
reference's ``ResidualBlock`` alone has 229; three of ``forward``'s four
functions have 165).
"""

import ast

from keras_diffusion.assignments.release import BEGIN
from keras_diffusion.assignments.submission import parse

LONG = 160  # syntax nodes: this much identical code is not written by chance


def copies(assignment, units):
    """The names of the reference definitions the submission copies, when that is a copy; else []."""
    text = assignment.source_file.read_text(encoding="utf-8")
    lines = text.splitlines()
    solved = {node.name for node in _parse(text, assignment.source_file.name) if any(BEGIN in line for line in lines[node.lineno - 1 : node.end_lineno])}
    # what the student writes; helpers the handout gives (sampling's perfect_denoiser) are everyone's
    reference = {name: found for name, found in _definitions(_parse(text, assignment.source_file.name)).items() if name in solved}
    submitted = {}
    for unit in units:
        for shape, size in _definitions(_parse(unit.source, unit.name)).values():
            submitted[shape] = size
    matched = {name: size for name, (shape, size) in reference.items() if shape in submitted}
    if set(assignment.functions) <= set(matched) or sum(matched.values()) >= LONG:
        return sorted(matched)
    return []


def _parse(source, name):
    try:
        return parse(source, name).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []


def _definitions(body):
    """{name: (canonical form, node count)} of the top-level functions and classes."""
    found = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            try:
                found[node.name] = canonical(node)
            except RecursionError:
                continue
    return found


def canonical(node):
    """The definition's syntax tree with its names numbered and its docstrings gone, as text; and its size."""
    names = {}

    def number(name):
        return names.setdefault(name, f"_{len(names)}")

    class Rename(ast.NodeTransformer):
        def visit_Name(self, n):
            return ast.copy_location(ast.Name(number(n.id), n.ctx), n)

        def visit_arg(self, n):
            self.generic_visit(n)
            return ast.copy_location(ast.arg(number(n.arg), n.annotation), n)

        def _definition(self, n):
            n.name = number(n.name)
            body = n.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                n.body = body[1:] or [ast.Pass()]
            return self.generic_visit(n)

        visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _definition

    tree = Rename().visit(_copy(node))
    return ast.dump(tree, annotate_fields=False), sum(1 for _ in ast.walk(tree))


def _copy(node):
    return ast.parse(ast.unparse(node)).body[0]

