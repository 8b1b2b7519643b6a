"""Public unsubscribe links: no login, the signed token in the address is the permission."""

from flask import render_template

from mailer.extensions import csrf, db
from mailer.i18n import in_language_of
from mailer.services import unsubscribe as unsubscribe_service
from mailer.unsubscribe import bp
from mailer.unsubscribe.forms import UnsubscribeForm


def invalid_link():
    return render_template("unsubscribe/invalid.html"), 404


@bp.get("/<token>")
def confirm(token: str):
    client = unsubscribe_service.client_for_unsubscribe_token(token)
    if client is None:
        return invalid_link()
    # The page speaks the language of the mailings' owner, like the footer that led here.
    with in_language_of(client.owner):
        return render_template("unsubscribe/confirm.html", client=client, form=UnsubscribeForm())


# Exempt from CSRF: mail clients unsubscribe with a bare one-click POST (RFC 8058,
# body "List-Unsubscribe=One-Click"), and the signed token already proves the link was received.
@bp.post("/<token>")
@csrf.exempt
def unsubscribe(token: str):
    client = unsubscribe_service.client_for_unsubscribe_token(token)
    if client is None:
        return invalid_link()
    unsubscribe_service.unsubscribe(client)
    db.session.commit()
    with in_language_of(client.owner):
        return render_template("unsubscribe/done.html", client=client)
