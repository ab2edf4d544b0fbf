"""Numbering, snapshots, HTML to PDF engines, Factur-X and storage (arrives with invoicing)."""
