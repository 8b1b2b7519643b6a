"""The template language of messages: what a subject or body may contain, checked when the
message is saved, and the sandboxed environments that render it within size limits.

A message's subject and bodies are small Jinja templates. Their language is restricted to what a
mail author needs — the placeholders `{{ name }}`, `{{ email }}` and `{{ unsubscribe_url }}`, a
few text filters and `{% if %}` — and checked when the message is saved (`check_template`), so a
broken template is a form error, never a failed run. Rendering happens in Jinja's sandbox as a
second line of defence, for content that reached the database some other way.
"""

from contextvars import ContextVar
from functools import lru_cache

from flask_babel import format_number
from flask_babel import gettext as _
from jinja2 import StrictUndefined, TemplateSyntaxError, nodes, pass_eval_context
from jinja2.filters import do_replace
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import escape

from mailer.i18n import lazy_text as _l

PLACEHOLDERS = ("name", "email", "unsubscribe_url")
PLACEHOLDER_LIST = "{{ name }}, {{ email }} or {{ unsubscribe_url }}"
ALLOWED_FILTERS = frozenset(
    {"capitalize", "d", "default", "e", "escape", "lower", "replace", "title", "trim", "truncate", "upper", "urlencode"}
)
# The template language a message may use. Everything else (loops, attribute access, calls,
# arithmetic, macros, includes) is refused when the message is saved.
ALLOWED_NODES = (
    nodes.Output,
    nodes.TemplateData,
    nodes.Name,
    nodes.Const,
    nodes.Filter,
    nodes.Test,
    nodes.Keyword,
    nodes.If,
    nodes.CondExpr,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Concat,
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


# Rendering limits. Without loops a template grows its text only through `replace`, but that
# can square it at each level (`email|replace("", email)|replace("", email)|...`): every part of a
# message must come out under MAX_RENDERED_CHARS, and one render may produce at most
# MAX_RENDER_WORK characters through `replace`, which bounds its time and memory.
MAX_RENDERED_CHARS = 1_000_000
MAX_RENDER_WORK = 4_000_000


def too_large_message() -> str:
    return _(
        "Template error: the message would be too large once rendered (over %(limit)s characters per part); "
        "use fewer or smaller replacements.",
        limit=format_number(MAX_RENDERED_CHARS),
    )


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
SAMPLE_WITHOUT_NAME = {"email": "ada@example.com", "unsubscribe_url": "https://example.com/unsubscribe/x"}
SAMPLE_VALUES = {"name": "Ada Lovelace", **SAMPLE_WITHOUT_NAME}
# The longest values a client can bring (a 254-character address, a 120-character name, a long
# link): a template that stays within the limits for them stays within them for every client.
LONGEST_VALUES = {"name": "N" * 120, "email": "e" * 242 + "@example.com", "unsubscribe_url": "https://" + "u" * 292}


# How a subject reads in lists and pickers: the placeholders named, not in template syntax.
READABLE_VALUES = {"name": "[name]", "email": "[email]", "unsubscribe_url": "[unsubscribe link]"}


@lru_cache(maxsize=1024)
def readable_subject(subject: str) -> str:
    """ "Hello {{ name }}" reads "Hello [name]": a message's name wherever messages are listed."""
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
        return _(
            "Template error for a client without a name: %(error)s; test it first with %(test)s.",
            error=error,
            test="{% if name %}",
        )
    return None


def _node_problem(node: nodes.Node) -> str | None:
    if type(node) not in ALLOWED_NODES:
        what = NODE_NAMES.get(type(node), _l("this expression"))
        return _(
            "%(what)s cannot be used; use the placeholders %(placeholders)s.", what=what, placeholders=PLACEHOLDER_LIST
        )
    if isinstance(node, nodes.Name) and node.name not in PLACEHOLDERS:
        return _(
            "unknown placeholder %(name)s; use %(placeholders)s.",
            name="{{ " + node.name + " }}",
            placeholders=PLACEHOLDER_LIST,
        )
    if isinstance(node, nodes.Filter) and node.name not in ALLOWED_FILTERS:
        return _(
            "the filter '%(name)s' cannot be used; use one of %(filters)s.",
            name=node.name,
            filters=", ".join(sorted(ALLOWED_FILTERS)),
        )
    if isinstance(node, nodes.Test) and node.name not in CHECK_ENV.tests:
        return _("unknown test '%(name)s'.", name=node.name)
    return None
