"""``check("forward")`` in a notebook: grade what the notebook defines, the same way ``grade`` does.

The functions are not called here, in the student's kernel, where they could
patch the checks: their source is read (``inspect.getsource``), put together
with the imports and constants the namespace holds, and graded in a child
process exactly like a submitted file. Feedback uses the fixed inputs of
``FEEDBACK_SEED``, so a student sees the same numbers every time; a class is
graded on inputs drawn from a secret seed, so memorised outputs earn nothing.
Copies of the shipped reference solution are graded here (the student is
only checking their own notebook) and flagged in the report.
"""

import ast
import inspect
import linecache
import sys
import textwrap
import types

from keras_diffusion.assignments.checks import FEEDBACK_SEED
from keras_diffusion.assignments.grade import TIMEOUT, Options, grade_units
from keras_diffusion.assignments.submission import Unit, parse

_IPYTHON = {"In", "Out", "get_ipython", "exit", "quit"}


def check(assignment, only=None, namespace=None, timeout=TIMEOUT):
    """Grade the functions this notebook defines for ``assignment`` and print the report.

    Args:
        assignment: the assignment's ID, e.g. ``"forward"``.
        only: a function or check name (or several) to check alone, e.g. ``"q_sample"``.
        namespace: where the functions live; the caller's globals by default.
        timeout: seconds for the whole assignment.

    Returns:
        The ``Result`` (its ``score``, ``max`` and ``checks``).
    """
    if namespace is None:
        namespace = sys._getframe(1).f_globals
    units, problems = units_from_namespace(namespace)
    options = Options(timeout=timeout, seed=FEEDBACK_SEED, allow_reference=True)
    result = grade_units(assignment, units, "this notebook", only=only, problems=problems, options=options)
    print(result.report())
    return result


def units_from_namespace(namespace):
    """Source units that rebuild the namespace's imports, constants, functions and classes; and what could not be read."""
    here = namespace.get("__name__", "__main__")
    imports, constants, units, problems = [], [], [], []
    for name, value in list(namespace.items()):
        if name.startswith("_") or name in _IPYTHON:
            continue
        if isinstance(value, types.ModuleType):
            imports.append(f"import {value.__name__}" + ("" if value.__name__ == name else f" as {name}"))
        elif (inspect.isfunction(value) or inspect.isclass(value)) and getattr(value, "__module__", None) == here:
            try:
                alias = "" if value.__name__ == name else f"\n{name} = {value.__name__}"  # q_sample = my_q_sample
                units.append(Unit(name, source_of(value) + alias))
            except (OSError, TypeError, SyntaxError) as error:
                problems.append(f"could not read the source of {name}: {error}")
        elif isinstance(value, (bool, int, float, complex, str, bytes, type(None))):
            if _literal(value):
                constants.append(f"{name} = {value!r}")
        elif _importable(value):  # from numpy import sqrt, from keras import layers, ...
            alias = "" if value.__name__ == name else f" as {name}"
            imports.append(f"from {value.__module__} import {value.__name__}{alias}")
    head = [Unit("imports", "\n".join(imports)), Unit("constants", "\n".join(constants))]
    return head + units, problems


def source_of(obj):
    """The source of a function or class, also for a class defined in a notebook cell (where inspect fails)."""
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        if not inspect.isclass(obj):
            raise
    # a class from a cell: find a method's cell in linecache, then the class in that cell
    for member in vars(obj).values():
        code = getattr(getattr(member, "__func__", member), "__code__", None)
        if code is None:
            continue
        text = "".join(linecache.getlines(code.co_filename))
        for node in ast.walk(parse(text)):
            if isinstance(node, ast.ClassDef) and node.name == obj.__name__ and node.lineno <= code.co_firstlineno <= node.end_lineno:
                lines = text.splitlines()[min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1 : node.end_lineno]
                return textwrap.dedent("\n".join(lines))
    raise OSError(f"no source found for class {obj.__name__}")


def _importable(value):
    """True when ``from value.__module__ import value.__name__`` gives this very object."""
    module = sys.modules.get(getattr(value, "__module__", None) or "")
    name = getattr(value, "__name__", None)
    return module is not None and isinstance(name, str) and name.isidentifier() and getattr(module, name, None) is value


def _literal(value):
    try:
        return ast.literal_eval(repr(value)) == value
    except (ValueError, SyntaxError):
        return False
