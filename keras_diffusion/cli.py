"""What every command line shares: quiet TensorFlow, one-line errors, exit codes.

TensorFlow is imported only once the arguments are parsed, so ``--help`` and
argument errors answer at once. When it is, it prints nothing of its own
(CUDA probing, oneDNN and CPU-feature notices read like errors to a newcomer)
unless ``--verbose`` is given: the package's warnings and errors still show.
"""

import argparse
import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile
import warnings

IO_ERROR = 1
USAGE_ERROR = 2
INTERRUPTED = 130  # the shell's code for "ended by SIGINT"


class UsageError(ValueError):
    """Bad input from the user: reported in one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse with examples in --help and errors on one line."""

    def __init__(self, prog, description, examples):
        super().__init__(
            prog=f"python -m {prog}",
            description=description,
            epilog="examples:\n" + "\n".join(f"  {line}" for line in examples),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        self.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
        self.add_argument("--verbose", action="store_true", help="also show TensorFlow's own log messages (hidden by default)")

    def error(self, message):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        parsed, extras = super().parse_known_args(args, namespace)
        tensorflow_logs(parsed.verbose)
        return parsed, extras


class Subcommand(argparse.ArgumentParser):
    """A subcommand's parser (``add_subparsers(parser_class=cli.Subcommand)``): errors on one line, exit code 2."""

    def error(self, message):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see --help)\n")


def tensorflow_logs(verbose):
    """Set what TensorFlow may print, before it is imported: nothing but errors, or everything when ``verbose``.

    TF_CPP_MIN_LOG_LEVEL=3 silences its C++ logging once it runs, and the
    Python loggers "tensorflow" and absl stop below ERROR. Some notices are
    written to the terminal while TensorFlow's libraries load, before any
    setting is read: the first ``import tensorflow`` (``import keras`` does it)
    therefore runs with file descriptor 2 pointed at a temporary file, which
    is shown only if the import fails. oneDNN and the devices work as always:
    only their messages change.
    """
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if verbose else "3"
    level = logging.INFO if verbose else logging.ERROR
    logging.getLogger("tensorflow").setLevel(level)
    try:
        from absl import logging as absl_logging  # installed with TensorFlow; light to import

        absl_logging.set_verbosity(level)
    except ImportError:
        pass
    quiet = [finder for finder in sys.meta_path if isinstance(finder, _QuietImport)]
    if verbose:
        for finder in quiet:
            sys.meta_path.remove(finder)
    elif not quiet and "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, _QuietImport())


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as Python would, and runs its import with fd 2 redirected (once)."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            try:
                self.loader.exec_module(module)
            except BaseException:
                _restore(saved)
                captured.seek(0)
                sys.stderr.write(captured.read().decode(errors="replace"))  # a broken install says why
                raise
            _restore(saved)


def _restore(saved):
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)


def run(main, argv=None):
    """Call ``main(argv)``; turn bad input (ValueError and its kin) into one line and exit code 2.

    The package's own errors (``UsageError``, ``RunError``, ``DataError``)
    are ValueErrors whose message already says what to do. A file that cannot
    be read or written (OSError) exits with 1, Ctrl-C with 130, and errors
    that carry an ``exit_code`` (a diverged run) with theirs. ``--debug``
    shows the traceback instead. The package's warnings print as one line.
    """
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            return main(argv)
    except BaseException as error:
        code = _exit_code(error)
        if code is None or debug:
            raise
        print(f"error: {error}" if str(error) else "interrupted", file=sys.stderr)
        return code


def _exit_code(error):
    """The exit code for an error reported in one line, or None for a bug (traceback)."""
    if getattr(error, "exit_code", None) is not None:
        return error.exit_code  # Ctrl-C in training (130), a diverged run (1)
    if isinstance(error, ValueError):
        return USAGE_ERROR
    if isinstance(error, OSError):
        return IO_ERROR  # a file that cannot be read or written: disk full, no permission
    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED
    return None


def _one_line_warnings(show):
    def show_warning(message, category, filename, lineno, file=None, line=None):
        # the package's own warnings are written for the reader: no path, no source line
        if category.__module__.startswith("keras_diffusion"):
            print(f"warning: {message}", file=file or sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return show_warning
