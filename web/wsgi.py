"""WSGI entry point (`flask --app web.wsgi`, Zappa's app_function)."""

from web.app import create_app
from web.runtime import freeze_start_up

app = create_app()
freeze_start_up()
