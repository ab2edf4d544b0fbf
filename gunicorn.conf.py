"""gunicorn settings for Comptoir: `gunicorn --config gunicorn.conf.py web.wsgi:app`.

The queue worker is not part of this server: run `flask --app web.wsgi worker` beside it
(`bin/comptoir-run` starts both; deploy/ has systemd units). Environment overrides:
COMPTOIR_BIND (default 127.0.0.1:5000), WEB_CONCURRENCY (worker processes, default 2),
COMPTOIR_THREADS (threads per worker, default 4); any other setting through
GUNICORN_CMD_ARGS or the command line.
"""

from __future__ import annotations

import os

bind = os.environ.get("COMPTOIR_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads, not sync workers: keep-alive connections (a shop's burst of webhooks, htmx
# polling), and a request waiting on the database does not idle a whole process.
worker_class = "gthread"
threads = int(os.environ.get("COMPTOIR_THREADS", "4"))
# One database connection per thread, plus as many for bursts (web/app.py).
os.environ.setdefault("APP_DATABASE_POOL_SIZE", str(threads))

timeout = 60  # a worker silent this long is killed and replaced (exports stream in chunks)
graceful_timeout = 30  # on SIGTERM, requests under way get this long to finish
keepalive = 5

accesslog = "-"
errorlog = "-"
loglevel = "info"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
# The TLS proxy in front (Caddy, nginx) runs on the same host: trust its X-Forwarded-Proto.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
proc_name = "comptoir-web"
