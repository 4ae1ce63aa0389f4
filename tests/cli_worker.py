"""A long-lived ``vipml`` command runner for the fuzz tests (not a test module).

Reads one JSON request per line on stdin, ``{"argv": [...], "cwd": "..."}``, runs
:func:`vipml.cli.main` with stdout and stderr captured, and answers one JSON line:
``{"rc": int, "err": str, "crash": str | null}`` where ``crash`` holds the traceback of any
exception that escaped ``main`` (which must never happen). A native crash kills the process:
the test sees a signal instead of an answer. One process serves many cases, so imports are paid
once.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import traceback
import warnings


def main() -> None:
    from vipml.cli import main as vipml

    out = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        os.chdir(request["cwd"])
        err, crash = io.StringIO(), None
        with (
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(err),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("default")
            try:
                rc = vipml(request["argv"])
            except SystemExit as exc:  # argparse refusing an argument
                rc = exc.code if isinstance(exc.code, int) else 2
            except BaseException:
                rc, crash = 1, traceback.format_exc()
        out.write(json.dumps({"rc": rc, "err": err.getvalue()[-4000:], "crash": crash}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
