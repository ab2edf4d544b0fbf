"""`flask documents …` and `flask company …`: the issued documents and the seller behind them."""

from __future__ import annotations

from flask.cli import AppGroup

documents_cli = AppGroup("documents", help="Issued documents: verify them, export them.")

company_cli = AppGroup("company", help="The company named as the seller on every document.")
