"""The content of mailing e-mails: a message rendered per client, with its unsubscribe link and
headers (the template language is in message_templates, the serialisation in mime).

The sending engine renders thousands of messages per second: templates are compiled once per
distinct content (`MailRenderer.for_message`), then each client costs one render of each part.
"""

from dataclasses import dataclass
from functools import lru_cache

from flask import current_app
from flask_babel import force_locale, gettext
from flask_babel import gettext as _
from jinja2 import Template, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import escape

from mailer.i18n import user_language
from mailer.models import Client, Message
from mailer.services.html import sanitize_html
from mailer.services.message_templates import (
    HTML_ENV,
    PLACEHOLDERS,
    TEXT_ENV,
    TemplateProblem,
    check_template,
    render_limited,
)
from mailer.services.mime import MailingMail
from mailer.services.unsubscribe import unsubscribe_url


@lru_cache(maxsize=8)
def footers(language: str) -> tuple[str, str]:
    """The footers appended to every body, text and HTML, in the mailing owner's language, so
    every message carries a visible unsubscribe link. Templates: `{{ unsubscribe_url }}` is
    filled in per client."""
    with force_locale(language):
        notice = gettext("You receive this e-mail because you are on our mailing list.")
        text = "\n\n-- \n" + notice + "\n" + gettext("To stop receiving these e-mails, unsubscribe here:")
        link = gettext(
            '<a href="%(url)s" style="color:#888;">Unsubscribe</a> to stop receiving these e-mails.',
            url="{{ unsubscribe_url }}",
        )
    html = (
        '\n<p style="color:#888;font-size:12px;margin-top:32px;border-top:1px solid #ddd;padding-top:8px;">'
        f"{escape(notice)} {link}</p>\n"
    )
    return text + " {{ unsubscribe_url }}\n", html


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str | None
    unsubscribe_url: str


class MailRenderer:
    """One message compiled once, rendered for any number of clients."""

    def __init__(self, subject: str, body_text: str, body_html: str | None, language: str = "en"):
        for part in (subject, body_text, body_html):
            if part is not None:
                problem = check_template(part)
                if problem:
                    raise TemplateProblem(problem)
        # The footers are compiled into the bodies: one render per part and client.
        text_footer, html_footer = footers(language)
        self.subject = _compile(TEXT_ENV, subject)
        self.text = _compile(TEXT_ENV, body_text.rstrip() + text_footer)
        self.html = _compile(HTML_ENV, _append_to_body(body_html, html_footer)) if body_html else None

    @classmethod
    def for_message(cls, message: Message) -> "MailRenderer":
        """The compiled renderer of this message's current content, shared by every caller.

        Raises TemplateProblem if the content is not a valid template.
        """
        renderer = _renderer_for_content(
            message.subject, message.body_text, message.body_html or None, user_language(message.owner)
        )
        if isinstance(renderer, TemplateProblem):
            raise TemplateProblem(str(renderer))  # a fresh one: a re-raised instance keeps growing its traceback
        return renderer

    def render(self, client: Client) -> RenderedMail:
        """Subject (one line), text and HTML for this client, each body ending with the unsubscribe link."""
        url = unsubscribe_url(client)
        values = {"email": client.email, "unsubscribe_url": url}
        if client.full_name:
            values["name"] = client.full_name
        try:
            subject = " ".join(render_limited(self.subject, values).split())
            text = render_limited(self.text, values)
            html = render_limited(self.html, values) if self.html is not None else None
        except TemplateProblem:
            raise
        except Exception as error:  # the client's data met a template edge; record it, don't crash
            raise TemplateProblem(_("Template error: %(error)s", error=error)) from error
        # Cleaned again as sent: the saved HTML was clean, but a comment or a false {% if %} can
        # remove the very quotes that made an attribute harmless text. A Stamp (text and escaped
        # placeholders only) cannot rearrange anything, and keeps its speed.
        if html is not None and not isinstance(self.html, Stamp):
            html = sanitize_html(html) or ""
        return RenderedMail(subject, text, html, url)

    def build(
        self, client: Client, message_id: str, sender: str | None = None, reply_to: str | None = None
    ) -> MailingMail:
        """The e-mail for this client, ready for `mail.send` or `connection.send`."""
        return mail_for(self.render(client), client, message_id=message_id, sender=sender, reply_to=reply_to)


# Keyed by the content itself: an edited message gets a new entry, and the strings of a loaded
# row hash once, so a hit costs next to nothing. A broken template is remembered too, so a run
# does not re-check it for every recipient.
@lru_cache(maxsize=64)
def _renderer_for_content(
    subject: str, body_text: str, body_html: str | None, language: str
) -> "MailRenderer | TemplateProblem":
    try:
        return MailRenderer(subject, body_text, body_html, language)
    except TemplateProblem as problem:
        return problem


class Stamp:
    """A template that is only text and plain placeholders (`Hello {{ name }}`), the common
    case, compiled once into its pieces: each client then costs one join, a fraction of a
    Jinja render. Gives exactly what Jinja gives (a missing value is empty, HTML is escaped)."""

    def __init__(self, pieces: list[tuple[bool, str]], escape_values: bool):
        self.pieces = pieces  # (is a placeholder, text or placeholder name)
        self.escape_values = escape_values

    def render(self, values: dict[str, str]) -> str:
        if self.escape_values:
            return "".join(
                str(escape(values.get(text, ""))) if placeholder else text for placeholder, text in self.pieces
            )
        return "".join(values.get(text, "") if placeholder else text for placeholder, text in self.pieces)


def _compile(environment: ImmutableSandboxedEnvironment, source: str) -> "Stamp | Template":
    """A Stamp when the template allows it, else the Jinja template."""
    tree = environment.parse(source)
    pieces = []
    for node in tree.body:
        if not isinstance(node, nodes.Output):
            return environment.from_string(source)
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                pieces.append((False, child.data))
            elif isinstance(child, nodes.Name) and child.name in PLACEHOLDERS:
                pieces.append((True, child.name))
            else:
                return environment.from_string(source)
    return Stamp(pieces, escape_values=environment.autoescape is True)


def _append_to_body(html: str, footer: str) -> str:
    closing = html.lower().rfind("</body>")
    if closing == -1:
        return html + "\n" + footer
    return html[:closing] + footer + html[closing:]


def mail_for(
    rendered: RenderedMail, client: Client, *, message_id: str, sender: str | None = None, reply_to: str | None = None
) -> MailingMail:
    return MailingMail(
        subject=rendered.subject,
        # A name with a line break must not break the To: header.
        recipient=(" ".join(client.full_name.split()), client.email),
        body=rendered.text,
        html=rendered.html,
        sender=sender or current_app.config["MAIL_DEFAULT_SENDER"],
        reply_to=reply_to,
        message_id=message_id,
        extra_headers={
            "List-Unsubscribe": f"<{rendered.unsubscribe_url}>",
            # RFC 8058: the mail client may unsubscribe with one POST, without opening a page.
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )


def build_mail(
    message: Message, client: Client, *, message_id: str, sender: str | None = None, reply_to: str | None = None
) -> MailingMail:
    """The e-mail of `message` for `client`; raises TemplateProblem if it cannot be rendered."""
    return MailRenderer.for_message(message).build(client, message_id, sender, reply_to)
