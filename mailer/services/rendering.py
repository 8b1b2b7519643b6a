"""The content of mailing e-mails: placeholders rendered per client, unsubscribe links and headers.

A message's subject and bodies are small Jinja templates. Their language is restricted to what a
mail author needs — the placeholders `{{ name }}`, `{{ email }}` and `{{ unsubscribe_url }}`, a
few text filters and `{% if %}` — and checked when the message is saved (`check_template`), so a
broken template is a form error, never a failed run. Rendering happens in Jinja's sandbox as a
second line of defence, for content that reached the database some other way.

The sending engine renders thousands of messages per second: templates are compiled once per
distinct content (`MailRenderer.for_message`), then each client costs one render of each part.
"""
import binascii
import random
import time
from contextvars import ContextVar
from dataclasses import dataclass
from email.header import Header
from email.utils import formatdate, parseaddr
from functools import lru_cache

import flask_mail
from flask import current_app
from flask_babel import force_locale, format_number, gettext
from flask_babel import gettext as _
from jinja2 import StrictUndefined, Template, TemplateSyntaxError, nodes, pass_eval_context
from jinja2.filters import do_replace
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import escape

from mailer.extensions import db
from mailer.i18n import lazy_text as _l
from mailer.i18n import user_language
from mailer.models import Client, Message, utcnow
from mailer.services import tokens
from mailer.services.addresses import header_address
from mailer.services.html import sanitize_html
from mailer.services.stats import clear_stats_cache

PLACEHOLDERS = ("name", "email", "unsubscribe_url")
PLACEHOLDER_LIST = "{{ name }}, {{ email }} or {{ unsubscribe_url }}"
ALLOWED_FILTERS = frozenset(
    {"capitalize", "d", "default", "e", "escape", "lower", "replace", "title", "trim", "truncate", "upper",
     "urlencode"}
)
# The template language a message may use. Everything else (loops, attribute access, calls,
# arithmetic, macros, includes) is refused when the message is saved.
ALLOWED_NODES = (
    nodes.Output, nodes.TemplateData, nodes.Name, nodes.Const, nodes.Filter, nodes.Test, nodes.Keyword,
    nodes.If, nodes.CondExpr, nodes.Compare, nodes.Operand, nodes.And, nodes.Or, nodes.Not, nodes.Concat,
)
NODE_NAMES = {
    nodes.For: _l("loops ({% for %})"),
    nodes.Getattr: _l("attributes (a dot after a placeholder)"),
    nodes.Getitem: _l("indexing ([...])"),
    nodes.Call: _l("function calls"),
    nodes.Assign: "{% set %}",
    nodes.AssignBlock: "{% set %}",
    nodes.Macro: _l("macros"),
    nodes.Include: "{% include %}",
    nodes.Extends: "{% extends %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% import %}",
    nodes.Block: "{% block %}",
}


# RFC 5322 allows 998 characters per line; stay clear of it.
MAX_7BIT_LINE = 900


# Rendering limits. Without loops a template grows its text only through `replace`, but that
# can square it at each level (`email|replace("", email)|replace("", email)|...`): every part of a
# message must come out under MAX_RENDERED_CHARS, and one render may produce at most
# MAX_RENDER_WORK characters through `replace`, which bounds its time and memory.
MAX_RENDERED_CHARS = 1_000_000
MAX_RENDER_WORK = 4_000_000
def too_large_message() -> str:
    return _("Template error: the message would be too large once rendered (over %(limit)s characters per part); "
             "use fewer or smaller replacements.", limit=format_number(MAX_RENDERED_CHARS))


class TemplateProblem(ValueError):
    """A message's template cannot be rendered; the text is fit to show or to record."""


class TemplateTooLarge(TemplateProblem):
    def __init__(self):
        super().__init__(too_large_message())


# The characters `replace` may still produce in the render under way.
_render_work_left: ContextVar[int] = ContextVar("render_work_left", default=MAX_RENDER_WORK)


@pass_eval_context
def limited_replace(eval_ctx, value, *args, **kwargs):
    """Jinja's `replace`, refusing (before doing it) a replacement past the rendering limits."""
    try:
        old, new, count = _replace_arguments(*args, **kwargs)
    except TypeError:
        return do_replace(eval_ctx, value, *args, **kwargs)  # Jinja's own message for a wrong call
    text, old, new = str(value), str(old), str(new)
    if eval_ctx.autoescape:
        new = str(escape(new))
    occurrences = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        occurrences = min(occurrences, count)
    size = len(text) + occurrences * (len(new) - len(old))
    left = _render_work_left.get() - size
    if size > MAX_RENDERED_CHARS or left < 0:
        raise TemplateTooLarge()
    _render_work_left.set(left)
    return do_replace(eval_ctx, value, *args, **kwargs)


def _replace_arguments(old, new, count=None):
    return old, new, count


def render_limited(template, values: dict) -> str:
    """Render one part within the rendering limits; TemplateTooLarge past them."""
    token = _render_work_left.set(MAX_RENDER_WORK)
    try:
        text = template.render(values)
    finally:
        _render_work_left.reset(token)
    if len(text) > MAX_RENDERED_CHARS:
        raise TemplateTooLarge()
    return text


def _environment(autoescape: bool, undefined=None) -> ImmutableSandboxedEnvironment:
    options = {"undefined": undefined} if undefined else {}
    environment = ImmutableSandboxedEnvironment(autoescape=autoescape, keep_trailing_newline=True, **options)
    # No globals (range, lipsum, cycler...): templates only see the placeholders, and each
    # render has a smaller context to build.
    environment.globals.clear()
    environment.filters["replace"] = limited_replace
    return environment


# Sending is lenient: an empty name renders as nothing. Checking is strict.
TEXT_ENV = _environment(autoescape=False)
HTML_ENV = _environment(autoescape=True)
CHECK_ENV = _environment(autoescape=False, undefined=StrictUndefined)


@lru_cache(maxsize=8)
def footers(language: str) -> tuple[str, str]:
    """The footers appended to every body, text and HTML, in the mailing owner's language, so
    every message carries a visible unsubscribe link. Templates: `{{ unsubscribe_url }}` is
    filled in per client."""
    with force_locale(language):
        notice = gettext("You receive this e-mail because you are on our mailing list.")
        text = "\n\n-- \n" + notice + "\n" + gettext("To stop receiving these e-mails, unsubscribe here:")
        link = gettext('<a href="%(url)s" style="color:#888;">Unsubscribe</a> to stop receiving these e-mails.',
                       url="{{ unsubscribe_url }}")
    html = ('\n<p style="color:#888;font-size:12px;margin-top:32px;border-top:1px solid #ddd;padding-top:8px;">'
            f"{escape(notice)} {link}</p>\n")
    return text + " {{ unsubscribe_url }}\n", html

SAMPLE_WITHOUT_NAME = {"email": "ada@example.com", "unsubscribe_url": "https://example.com/unsubscribe/x"}
SAMPLE_VALUES = {"name": "Ada Lovelace", **SAMPLE_WITHOUT_NAME}
# The longest values a client can bring (a 254-character address, a 120-character name, a long
# link): a template that stays within the limits for them stays within them for every client.
LONGEST_VALUES = {"name": "N" * 120, "email": "e" * 242 + "@example.com",
                  "unsubscribe_url": "https://" + "u" * 292}


# How a subject reads in lists and pickers: the placeholders named, not in template syntax.
READABLE_VALUES = {"name": "[name]", "email": "[email]", "unsubscribe_url": "[unsubscribe link]"}


@lru_cache(maxsize=1024)
def readable_subject(subject: str) -> str:
    """"Hello {{ name }}" reads "Hello [name]": a message's name wherever messages are listed."""
    try:
        return " ".join(TEXT_ENV.from_string(subject).render(READABLE_VALUES).split()) or subject
    except Exception:  # content that reached the database unchecked: show it as written
        return subject


def check_template(source: str) -> str | None:
    """None if `source` is a template Mailer can render, else a short message for the form field."""
    try:
        return _template_problem(source)
    except RecursionError:  # thousands of nested brackets or blocks
        return _("Template error: the template is nested too deeply.")


def _template_problem(source: str) -> str | None:
    try:
        tree = CHECK_ENV.parse(source)
    except TemplateSyntaxError as error:
        return _("Template error on line %(line)s: %(problem)s", line=error.lineno, problem=error.message)
    for node in tree.find_all(nodes.Node):
        problem = _node_problem(node)
        if problem:
            return _("Template error on line %(line)s: %(problem)s", line=node.lineno, problem=problem)
    # Anything the author typed must come back as a message, never as a 500.
    try:
        checked = CHECK_ENV.from_string(tree)
        render_limited(checked, SAMPLE_VALUES)
        render_limited(checked, LONGEST_VALUES)
    except TemplateTooLarge as error:
        return str(error)
    except Exception as error:
        return _("Template error: %(error)s", error=error)
    try:
        render_limited(TEXT_ENV.from_string(source), SAMPLE_WITHOUT_NAME)
    except TemplateTooLarge as error:
        return str(error)
    except Exception as error:
        return _("Template error for a client without a name: %(error)s; test it first with %(test)s.", error=error,
                 test="{% if name %}")
    return None


def _node_problem(node: nodes.Node) -> str | None:
    if type(node) not in ALLOWED_NODES:
        what = NODE_NAMES.get(type(node), _l("this expression"))
        return _("%(what)s cannot be used; use the placeholders %(placeholders)s.", what=what,
                 placeholders=PLACEHOLDER_LIST)
    if isinstance(node, nodes.Name) and node.name not in PLACEHOLDERS:
        return _("unknown placeholder %(name)s; use %(placeholders)s.", name="{{ " + node.name + " }}",
                 placeholders=PLACEHOLDER_LIST)
    if isinstance(node, nodes.Filter) and node.name not in ALLOWED_FILTERS:
        return _("the filter '%(name)s' cannot be used; use one of %(filters)s.", name=node.name,
                 filters=", ".join(sorted(ALLOWED_FILTERS)))
    if isinstance(node, nodes.Test) and node.name not in CHECK_ENV.tests:
        return _("unknown test '%(name)s'.", name=node.name)
    return None


# --- Unsubscribe links -------------------------------------------------------------------------

def unsubscribe_token(client: Client) -> str:
    """A signed token naming this client; it never expires.

    It names the address too, so a link stays bound to the person it was sent to even if the
    client's row is later deleted and its id reused, or its address changed.
    """
    return tokens.make_short_token(tokens.UNSUBSCRIBE, [client.id, client.email])


def unsubscribe_url(client: Client) -> str:
    return f"{current_app.config['EXTERNAL_URL']}/unsubscribe/{unsubscribe_token(client)}"


def client_for_unsubscribe_token(token: str) -> Client | None:
    """The client a token was made for, or None for a forged or stale token."""
    payload = tokens.read_token(tokens.UNSUBSCRIBE, token)
    if not (isinstance(payload, list) and len(payload) == 2 and isinstance(payload[0], int)):
        return None
    client = db.session.get(Client, payload[0])
    if client is None or client.email.lower() != str(payload[1]).lower():
        return None
    return client


def unsubscribe(client: Client) -> bool:
    """Unsubscribe the client; True if this changed anything (doing it twice is harmless)."""
    if client.unsubscribed_at is not None:
        return False
    client.unsubscribed_at = utcnow()
    clear_stats_cache(client.owner_id)
    return True


# --- Building the e-mails ----------------------------------------------------------------------

def make_message_id(delivery_id: int) -> str:
    """A unique Message-ID naming the delivery, in the configured domain. The random part only
    keeps ids apart across installations and databases; it need not be secret, and os.urandom
    (which `secrets` uses) costs more than the rest of the id on a busy machine."""
    domain = current_app.config["MAIL_MESSAGE_ID_DOMAIN"]
    return f"<mailing.{delivery_id}.{random.getrandbits(64):016x}@{domain}>"


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str | None
    unsubscribe_url: str


class MailingMail(flask_mail.Message):
    """A Flask-Mail message, serialised directly instead of through the `email` package.

    The `email` package needs about 1.5 ms per message, more than everything else the sending
    engine does per recipient, and its header folders either turn a long List-Unsubscribe URL
    into encoded words (which mail programs don't parse) or leave body lines over the SMTP limit.
    The structure here is fixed and small: text, or multipart/alternative of text and HTML, each
    part 7bit when it can be, quoted-printable otherwise; headers in plain ASCII, except an
    address whose local part is not ASCII, which stays UTF-8 (RFC 6532: for SMTPUTF8 servers).
    """

    def __init__(self, *, subject: str, recipient: tuple[str, str], body: str, html: str | None,
                 sender: str, message_id: str, extra_headers: dict[str, str], reply_to: str | None = None):
        # Flask-Mail's constructor would make a Message-ID of its own with socket.getfqdn(), which
        # can cost a DNS lookup per message; every attribute that Flask-Mail reads is set here.
        self.subject = subject
        self.recipients = [recipient]
        self.sender = sender
        self.reply_to = reply_to
        self.cc = []
        self.bcc = []
        self.body = body
        self.alts = {"html": html} if html is not None else {}
        self.date = None
        self.msgId = message_id
        self.charset = "utf-8"
        self.extra_headers = extra_headers
        self.mail_options = []
        self.rcpt_options = []
        self.attachments = []

    def as_bytes(self) -> bytes:
        headers = [
            ("From", _sender_header(self.sender)),
            ("To", ", ".join(_address(r if isinstance(r, tuple) else parseaddr(r)) for r in self.recipients)),
            *([("Reply-To", _sender_header(self.reply_to))] if self.reply_to else []),
            ("Subject", _unstructured(self.subject)),
            ("Date", formatdate(self.date, localtime=True) if self.date else _date_of_second(int(time.time()))),
            ("Message-ID", self.msgId),
            *(self.extra_headers or {}).items(),
            ("MIME-Version", "1.0"),
        ]
        head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode("utf-8")
        if self.html is None:
            return head + _text_part(self.body, "plain")
        boundary = f"=_{random.getrandbits(128):032x}"  # "=_" cannot occur in quoted-printable text
        return b"".join((
            head,
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode("ascii"),
            f"--{boundary}\r\n".encode("ascii"),
            _text_part(self.body, "plain"),
            f"\r\n--{boundary}\r\n".encode("ascii"),
            _text_part(self.html, "html"),
            f"\r\n--{boundary}--\r\n".encode("ascii"),
        ))

    def as_string(self) -> str:
        return self.as_bytes().decode("utf-8")


@lru_cache(maxsize=4)
def _date_of_second(second: int) -> str:
    """The Date header of this second: formatting the local time costs ~0.1 ms, once a second."""
    return formatdate(second, localtime=True)


def _text_part(text: str, subtype: str) -> bytes:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    crlf_text = "\r\n".join(lines)
    # Plain ASCII in short lines goes as it is; anything else quoted-printable, which keeps every
    # line under the SMTP limit and needs no 8BITMIME from the server.
    if crlf_text.isascii() and max(map(len, lines)) <= MAX_7BIT_LINE:
        encoding, payload = "7bit", crlf_text.encode("ascii")
    else:
        encoding, payload = "quoted-printable", binascii.b2a_qp(crlf_text.encode("utf-8"), istext=True)
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n'
    return head.encode("ascii") + payload


def _unstructured(value: str) -> str:
    """A header value as ASCII: RFC 2047 encoded words when it is not ASCII already."""
    value = " ".join(value.split())
    if value.isascii():
        return value
    return Header(value, "utf-8").encode(linesep="\r\n")


@lru_cache(maxsize=16)
def _sender_header(sender: str) -> str:
    return _address(parseaddr(sender))


def _address(pair: tuple[str, str]) -> str:
    name, address = pair
    return header_address(name, address)


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
        renderer = _renderer_for_content(message.subject, message.body_text, message.body_html or None,
                                         user_language(message.owner))
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

    def build(self, client: Client, message_id: str, sender: str | None = None,
              reply_to: str | None = None) -> MailingMail:
        """The e-mail for this client, ready for `mail.send` or `connection.send`."""
        return mail_for(self.render(client), client, message_id=message_id, sender=sender, reply_to=reply_to)


# Keyed by the content itself: an edited message gets a new entry, and the strings of a loaded
# row hash once, so a hit costs next to nothing. A broken template is remembered too, so a run
# does not re-check it for every recipient.
@lru_cache(maxsize=64)
def _renderer_for_content(subject: str, body_text: str, body_html: str | None,
                          language: str) -> "MailRenderer | TemplateProblem":
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
            return "".join(str(escape(values.get(text, ""))) if placeholder else text
                           for placeholder, text in self.pieces)
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


def mail_for(rendered: RenderedMail, client: Client, *, message_id: str, sender: str | None = None,
             reply_to: str | None = None) -> MailingMail:
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


def build_mail(message: Message, client: Client, *, message_id: str, sender: str | None = None,
               reply_to: str | None = None) -> MailingMail:
    """The e-mail of `message` for `client`; raises TemplateProblem if it cannot be rendered."""
    return MailRenderer.for_message(message).build(client, message_id, sender, reply_to)
