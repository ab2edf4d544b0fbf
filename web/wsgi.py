"""WSGI entry point (`flask --app web.wsgi`, Zappa's app_function)."""

from web.app import create_app

app = create_app()
