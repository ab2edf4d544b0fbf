"""gunicorn settings for Comptoir: `gunicorn --config gunicorn.conf.py web.wsgi:app`.

The queue worker is not part of this server: run `flask --app web.wsgi worker` beside it
(`bin/comptoir-run` starts both; deploy/ has systemd units). Environment overrides:
COMPTOIR_BIND (default 127.0.0.1:5000), WEB_CONCURRENCY (worker processes, default 2),
COMPTOIR_THREADS (threads per worker, default 4), APP_LOG_FORMAT (json by default here, text
for plain lines); any other setting through
GUNICORN_CMD_ARGS or the command line.
"""

from __future__ import annotations

import os

bind = os.environ.get("COMPTOIR_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads, not sync workers: keep-alive connections (a shop's burst of webhooks, htmx
# polling), and a request waiting on the database does not idle a whole process. gthread,
# with kept-alive connections shared out between the workers (web/gunicorn_worker.py).
worker_class = "web.gunicorn_worker.BalancedThreadWorker"
threads = int(os.environ.get("COMPTOIR_THREADS", "4"))
# One database connection per thread, plus as many for bursts (web/app.py).
os.environ.setdefault("APP_DATABASE_POOL_SIZE", str(threads))

timeout = 60  # a worker silent this long is killed and replaced (exports stream in chunks)
graceful_timeout = 30  # on SIGTERM, requests under way get this long to finish
keepalive = 5

# Production logs are JSON lines (web/observability.py), gunicorn's own included; set
# APP_LOG_FORMAT=text for plain lines.
os.environ.setdefault("APP_LOG_FORMAT", "json")
if os.environ["APP_LOG_FORMAT"].lower() == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "web.observability.JsonFormatter"}},
        # gunicorn's own loggers write once, through their JSON handler only.
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
            "error_console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
        },
    }

accesslog = "-"
errorlog = "-"
loglevel = "info"
# The request id the app answered with (X-Request-ID) joins the access line to the app's lines.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s" %({x-request-id}o)s'
# The TLS proxy in front (Caddy, nginx) runs on the same host: trust its X-Forwarded-Proto.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
proc_name = "comptoir-web"


def child_exit(_server: object, worker: object) -> None:
    """In the arbiter, once a worker has died (killed included): its connection slot is free."""
    release = getattr(worker, "release_slot", None)
    if release is not None:
        release()
