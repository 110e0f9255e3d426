"""What every command line shares: quiet TensorFlow, one-line errors, exit codes."""

import argparse
import sys
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

    def error(self, message):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see --help)\n")


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
