"""The grader's child process: run a submission's definitions, call them on the grader's inputs.

    python child.py CHECKS_FILE PAYLOAD_JSON OUT_DIR CHECKS_TO_RUN

Started by ``grade.py`` as a script, never imported: the student's code runs
in this process, so nothing here decides a grade. It only writes, for each
check i in CHECKS_TO_RUN (e.g. "0,2,3"), a line "i" to OUT_DIR/progress
before the check starts, then OUT_DIR/i.npz (what the student's code
returned, as plain arrays) and OUT_DIR/i.json (the errors it raised and the
keras_diffusion functions it called). The grader compares those arrays with
its own.

It imports NumPy and the assignment's checks module only: TensorFlow comes
in when the submission imports it (unet_block), never for the others.
"""

import ast
import builtins
import functools
import importlib.abc
import importlib.util
import inspect
import json
import pathlib
import sys
import traceback

import numpy as np

# the student's code may rebind these names in its own modules; keep ours
_savez, _dumps = np.savez, json.dumps


class Delegated(BaseException):
    """Graded code called keras_diffusion. A BaseException, so ``except Exception`` in the submission cannot hide it."""


class Missing(Exception):
    """The submission does not define a name a check calls."""


class Guard(importlib.abc.MetaPathFinder):
    """Wraps every function and class keras_diffusion defines, as its modules load, so that a call
    from graded code is recorded and refused: the package may not do the student's work."""

    def __init__(self):
        self.active, self.loading, self.calls = False, 0, []

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] != "keras_diffusion":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader.exec_module = self._guarded_exec(spec.loader.exec_module)
        return spec

    def _guarded_exec(self, exec_module):
        def exec_and_wrap(module):
            self.loading += 1  # the package's own import-time code may call itself
            try:
                exec_module(module)
            finally:
                self.loading -= 1
            for attr, value in list(vars(module).items()):
                if getattr(value, "__module__", None) != module.__name__ or attr.startswith("__"):
                    continue  # not the package's own, or the module's __getattr__ (its lazy imports are guarded anyway)
                qualname = f"{module.__name__}.{attr}"
                if inspect.isclass(value):
                    self._guard_class(qualname, value)
                elif inspect.isfunction(value):
                    setattr(module, attr, self._refuse(qualname, value))

        return exec_and_wrap

    def _guard_class(self, qualname, cls):
        """Its constructor and every method: ``NoiseSchedule.linear`` is refused by name, before it builds anything."""
        for key, member in list(vars(cls).items()):
            if key.startswith("__") and key not in ("__init__", "__call__"):
                continue
            name = qualname if key == "__init__" else f"{qualname}.{key}"
            if isinstance(member, (classmethod, staticmethod)):
                setattr(cls, key, type(member)(self._refuse(name, member.__func__)))
            elif inspect.isfunction(member):
                setattr(cls, key, self._refuse(name, member))
        if "__init__" not in vars(cls):
            cls.__init__ = self._refuse(qualname, cls.__init__)

    def _refuse(self, qualname, function):
        guard = self

        def refused(*args, **kwargs):
            if guard.active and not guard.loading:
                guard.calls.append(qualname)
                raise Delegated(qualname)
            return function(*args, **kwargs)

        # look like the function (Keras reads a layer's call signature) without handing out the original
        functools.update_wrapper(refused, function)
        del refused.__wrapped__
        try:
            refused.__signature__ = inspect.signature(function)
        except (TypeError, ValueError):
            pass
        return refused


class Student:
    """``student.q_sample`` is the submission's q_sample, or a clear error when it has none."""

    def __init__(self, namespace):
        self._namespace = namespace

    def __getattr__(self, name):
        if name not in self._namespace:
            raise Missing(f"{name} is not defined in the submission")
        return self._namespace[name]


def load_submission(payload, namespace, guard, unit_names):
    """Execute the kept top-level statements, one at a time: one failing import does not stop the rest."""
    flags = 0
    for feature in payload.get("future", []):
        flags |= getattr(__import__("__future__"), feature).compiler_flag
    errors = []
    for unit in payload["units"]:
        unit_names.add(unit["name"])
        body = ast.parse(unit["source"], unit["name"]).body
        for index in unit["keep"]:
            node = body[index]
            code = compile(ast.Module([node], type_ignores=[]), unit["name"], "exec", flags=flags, dont_inherit=True)
            guard.active = True
            try:
                exec(code, namespace)
            except BaseException as error:  # noqa: BLE001 -- whatever the submission raises is reported, never fatal
                errors.append(describe(error, unit_names))
            finally:
                guard.active = False
    return errors


def describe(error, unit_names):
    """One line: what the student's code raised, and where in the submission."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename in unit_names]
    where = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
    if isinstance(error, Delegated):
        return f"calls {error.args[0]}"
    if isinstance(error, Missing):
        return str(error)
    if isinstance(error, SystemExit):
        return f"called sys.exit({error.code!r}){where}"
    try:
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    except Exception:  # noqa: BLE001 -- a student's exception class whose str() fails
        text = ""
    return f"{type(error).__name__}: {text}{where}"[:500]


def to_arrays(value, prefix):
    """What the student's code returned, as plain arrays (float64, or str for names); refuses anything else."""
    if isinstance(value, dict):
        items = [(f"{prefix}.{key}", item) for key, item in value.items()]
    else:
        items = [(prefix, value)]
    arrays = {}
    for key, item in items:
        if item is None:
            raise TypeError("returned None (is a return statement missing?)")
        array = np.asarray(item)
        if array.dtype.kind not in "biufU":
            raise TypeError(f"returned {type(item).__name__}, not an array of numbers")
        arrays[key] = array if array.dtype.kind == "U" else array.astype(np.float64)
    return arrays


def run_check(checks, student, name, guard, unit_names):
    """Call every case of one check; each gets fresh inputs, so a case that writes into its arguments harms only itself."""
    arrays, errors, calls = {}, {}, []
    count = len(checks.cases(student, checks.inputs())[name])
    for j in range(count):
        case = checks.cases(student, checks.inputs())[name][j]
        guard.calls = []
        guard.active = True
        try:
            arrays.update(to_arrays(case(), str(j)))
        except BaseException as error:  # noqa: BLE001 -- reported as this case's failure
            errors[str(j)] = describe(error, unit_names)
        finally:
            guard.active = False
            calls += guard.calls
    return arrays, errors, sorted(set(calls))


def main(checks_file, payload_file, out_dir, todo):
    # import keras_diffusion from where the grader's own copy lives, installed or not
    sys.path[0] = str(pathlib.Path(__file__).resolve().parents[2])
    spec = importlib.util.spec_from_file_location("_assignment_checks", checks_file)
    checks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checks)
    out = pathlib.Path(out_dir)
    payload = json.loads(pathlib.Path(payload_file).read_text())

    guard = Guard()
    sys.meta_path.insert(0, guard)
    namespace, unit_names = {"__name__": "submission", "__builtins__": builtins}, set()
    load_errors = load_submission(payload, namespace, guard, unit_names)
    # written whole, then renamed: the grader starts the checks' clock when this file appears
    (out / "load.tmp").write_text(_dumps(load_errors))
    (out / "load.tmp").rename(out / "load.json")
    student = Student(namespace)
    with open(out / "progress", "a") as progress:
        for i, (name, _, _) in enumerate(checks.CHECKS):
            if i not in todo:
                continue
            progress.write(f"{i}\n")
            progress.flush()
            arrays, errors, calls = run_check(checks, student, name, guard, unit_names)
            _savez(out / f"{i}.npz", **arrays)
            (out / f"{i}.json").write_text(_dumps({"errors": errors, "calls": calls}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], {int(i) for i in sys.argv[4].split(",")}))
