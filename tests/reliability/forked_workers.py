"""Start `flask --app web.wsgi worker` processes in a fraction of a second, for drills that
kill them again and again: this process imports the app once (as gunicorn's --preload does)
and forks a child per request, which runs the `worker` command itself.

    python -m tests.reliability.forked_workers
    stdin:  "start LOG_PATH" -> prints the child's pid (its output goes to LOG_PATH)
            "wait PID"       -> waits for that child, prints its wait status
"""

from __future__ import annotations

import os
import sys


def _run_worker(log_path: str) -> None:
    """In the child: output to the log, a connection pool of its own, then the command."""
    from flask.cli import main

    import web.wsgi

    descriptor = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.close(descriptor)
    # Connections opened before the fork belong to the parent.
    web.wsgi.app.extensions["comptoir.engine"].dispose(close=False)
    sys.argv = ["flask", "--app", "web.wsgi", "worker"]
    try:
        main()
    finally:
        sys.stdout.flush()
        os._exit(0)


def serve() -> None:
    import web.wsgi  # noqa: F401  (the app, built once for every child)

    print("ready", flush=True)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "start":
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                _run_worker(argument)
            print(pid, flush=True)
        elif command == "wait":
            _, status = os.waitpid(int(argument), 0)
            print(status, flush=True)


if __name__ == "__main__":
    serve()
