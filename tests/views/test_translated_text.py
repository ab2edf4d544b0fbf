"""Text translated from a variable stays text: no template calls `_()` on a variable.

Jinja's `_()` returns markup (its result is not escaped again), so `{{ _(error) }}` would
print a hostile error text as HTML. Templates show a stored msgid through the `translated`
filter, which returns plain text that autoescaping then escapes.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

from flask import Flask, render_template_string
from flask.testing import FlaskClient
from flask_babel import force_locale
from jinja2 import nodes
from sqlalchemy.orm import Session

from tests.factories import make_order, make_shop
from web.models import Job, User
from web.models.enums import JobState, Role
from web.services.bulk import ACTION_JOB

HOSTILE = '<img src=x onerror="alert(1)">'
ESCAPED = "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;"
GETTEXT = {"_", "gettext", "ngettext", "pgettext", "npgettext"}


def test_no_template_translates_a_variable(app: Flask) -> None:
    templates = Path(app.root_path).parent / "templates"
    offenders = []
    for path in sorted(templates.rglob("*.html")):
        tree = app.jinja_env.parse(path.read_text(), path.name, str(path))
        for call in tree.find_all(nodes.Call):
            if not (isinstance(call.node, nodes.Name) and call.node.name in GETTEXT):
                continue
            texts = call.args[:2] if call.node.name in ("ngettext", "pgettext") else call.args[:1]
            if call.node.name == "npgettext":
                texts = call.args[:3]
            if not all(isinstance(text, nodes.Const) for text in texts):
                offenders.append(f"{path.relative_to(templates)}:{call.lineno}")
    assert not offenders, offenders


# The registries that translate the msgids services store, by name.
TRANSLATORS = {"web/views/events.py", "web/services/mapping_issues.py"}


def test_no_python_code_translates_a_variable_outside_the_registries(app: Flask) -> None:
    root = Path(app.root_path).parent
    offenders = []
    for path in sorted((root / "web").rglob("*.py")):
        if str(path.relative_to(root)) in TRANSLATORS:
            continue
        for call in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
                continue
            if call.func.id not in GETTEXT | {"_l", "lazy_gettext"} or not call.args:
                continue
            texts = call.args[:2] if call.func.id == "ngettext" else call.args[:1]
            if not all(isinstance(t, ast.Constant) and isinstance(t.value, str) for t in texts):
                offenders.append(f"{path.relative_to(root)}:{call.lineno}")
    assert not offenders, offenders


def test_the_translated_filter_escapes_what_underscore_would_not(app: Flask) -> None:
    with app.test_request_context():
        # Why the rule: Jinja's gettext marks its result safe.
        assert render_template_string("{{ _(text) }}", text=HOSTILE) == HOSTILE
        assert render_template_string("{{ text | translated }}", text=HOSTILE) == ESCAPED
        # A msgid still reads in the reader's language (French by default).
        assert render_template_string("{{ text | translated }}", text="Required.") == "Obligatoire."


def test_a_hostile_field_error_is_shown_as_text(app: Flask) -> None:
    with app.test_request_context():
        html = render_template_string(
            '{% from "shops/_fields.html" import text_field %}'
            '{{ text_field("name", "Name", {}, {"name": error}) }}',
            error=HOSTILE,
        )
    assert HOSTILE not in html
    assert f'<p class="field-error" id="err-name">{ESCAPED}</p>' in html


def test_a_hostile_refusal_reason_in_a_bulk_job_is_shown_as_text(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session
) -> None:
    admin = login_as(Role.ADMIN)
    order = make_order(db_session, make_shop(db_session, "escape-shop"))
    refusal = {"id": order.id, "number": order.number, "reason": HOSTILE}
    job = Job(
        kind=ACTION_JOB,
        payload={"action": "hold"},
        state=JobState.DONE,
        result={"done": 0, "refused": [refusal], "refused_count": 1},
        created_by_id=admin.id,
    )
    db_session.add(job)
    db_session.commit()
    html = client.get(f"/orders/bulk/jobs/{job.id}").get_data(as_text=True)
    assert HOSTILE not in html
    assert f"{order.number}</a>: {ESCAPED}</li>" in html


def test_a_forced_language_holds_inside_its_block_and_no_further(app: Flask) -> None:
    # Templates reuse the request's catalogue: it must follow force_locale both ways.
    template = "{{ _('Number') }} {{ 'paid' | label }}"
    with app.test_request_context("/"):
        assert render_template_string(template) == "Numéro Payée"
        with force_locale("en"):
            assert render_template_string(template) == "Number Paid"
        assert render_template_string(template) == "Numéro Payée"
