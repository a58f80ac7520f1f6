"""The record of a market dialogue as an HTML document a buyer can attach to procurement
documents: who was invited, who took part, every question with its asker and answer, and the
written inputs, with times (UTC). Pure: it renders a `DialogueRecord`, everything escaped."""

from __future__ import annotations

from datetime import datetime
from html import escape

from services.needs.models import DialogueRecord, Named


def _at(value: datetime | None) -> str:
    return "" if value is None else escape(value.strftime("%Y-%m-%d %H:%M:%S UTC"))


def _who(named: Named | None) -> str:
    if named is None:
        return ""
    return f"{escape(named.name or '(removed or unknown)')} <small>{escape(named.id)}</small>"


def _table(headings: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "<p>None.</p>"
    head = "".join(f"<th scope='col'>{h}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _text(value: str | None) -> str:
    return "" if value is None else f"<div class='text'>{escape(value)}</div>"


def render_html(record: DialogueRecord) -> str:
    d = record.dialogue
    groups = ", ".join(_who(g) for g in d.buyer_groups)
    suppliers = _table(
        ["Supplier", "Invited", "Joined (open dialogue)", "Took part", "Response", "Responded"],
        [
            [
                _who(Named(id=s.supplier_id, name=s.name)),
                _at(s.invited_at),
                _at(s.joined_at),
                "yes" if s.took_part else "no",
                escape(s.response or ""),
                _at(s.responded_at),
            ]
            for s in record.suppliers
        ],
    )
    questions = _table(
        ["Question", "Asked by", "Asked", "Answer", "Answered by", "Answered"],
        [
            [
                _text(q.question),
                _who(q.asked_by),
                _at(q.asked_at),
                _text(q.answer),
                _who(q.answered_by),
                _at(q.answered_at),
            ]
            for q in record.questions
        ],
    )
    inputs = _table(
        ["Supplier", "Submitted", "Written input"],
        [[_who(i.supplier), _at(i.submitted_at), _text(i.text)] for i in record.written_inputs],
    )
    return f"""<!DOCTYPE html>
<html lang="sv">
<head>
<meta charset="utf-8">
<title>Market dialogue record: {escape(d.title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; width: 100%; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #999; padding: 0.3em 0.5em; text-align: left; vertical-align: top; }}
.text {{ white-space: pre-wrap; }}
small {{ color: #555; }}
</style>
</head>
<body>
<h1>Market dialogue record (dokumentation av marknadsdialog)</h1>
<dl>
<dt>Dialogue</dt><dd>{escape(d.title)} <small>{escape(d.id)}</small></dd>
<dt>Need</dt><dd>{escape(d.need_title)} <small>{escape(d.need_id)}</small></dd>
<dt>Buyer groups</dt><dd>{groups}</dd>
<dt>Agenda</dt><dd>{_text(d.agenda)}</dd>
<dt>Open to every registered supplier</dt><dd>{"yes" if d.open else "no"}</dd>
<dt>Opened</dt><dd>{_at(d.opened_at)}</dd>
<dt>Closes</dt><dd>{_at(d.closes_at)} ({escape(d.status)})</dd>
<dt>Record generated</dt><dd>{_at(record.generated_at)}</dd>
</dl>
<h2>Suppliers invited and taking part</h2>
{suppliers}
<h2>Questions and answers</h2>
<p>Every answer was shown to every participating supplier without naming who asked.</p>
{questions}
<h2>Written inputs</h2>
{inputs}
</body>
</html>
"""
