"""What every command line shares: quiet TensorFlow, one-line errors, exit codes."""

import argparse
import sys

USAGE_ERROR = 2


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
    are ValueErrors whose message already says what to do.
    """
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        return main(argv)
    except ValueError as error:
        if debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except Exception as error:
        # errors that carry their own exit code: Ctrl-C (130), a diverged run (1)
        code = getattr(error, "exit_code", None)
        if code is None or debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return code
