"""The HTML an e-mail may contain, cleaned with nh3: when a message is saved, and again in every
e-mail as it is sent (a template can rearrange the saved markup, see rendering)."""

import nh3

# What an e-mail may keep: ordinary formatting, links, images and tables, with inline styles
# limited to presentation. Scripts, event handlers (on*), forms, frames and javascript: URLs go.
HTML_TAGS = set(nh3.ALLOWED_TAGS) | {"font"}
HTML_ATTRIBUTES = {tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()}
for tag, names in {
    "*": {"style", "title", "dir", "lang", "align"},
    "a": {"href", "hreflang", "name", "target"},
    "img": {"src", "alt", "width", "height", "border"},
    "table": {"width", "border", "cellpadding", "cellspacing", "bgcolor", "role"},
    "tr": {"bgcolor", "valign"},
    "td": {"width", "height", "bgcolor", "valign", "nowrap"},
    "th": {"width", "height", "bgcolor", "valign", "nowrap"},
    "font": {"color", "face", "size"},
}.items():
    HTML_ATTRIBUTES.setdefault(tag, set()).update(names)
HTML_URL_SCHEMES = {"http", "https", "mailto", "tel"}
HTML_STYLE_PROPERTIES = {
    "color",
    "background-color",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "line-height",
    "letter-spacing",
    "text-align",
    "text-decoration",
    "text-transform",
    "vertical-align",
    "white-space",
    "width",
    "max-width",
    "min-width",
    "height",
    "max-height",
    "display",
    "margin",
    "margin-top",
    "margin-right",
    "margin-bottom",
    "margin-left",
    "padding",
    "padding-top",
    "padding-right",
    "padding-bottom",
    "padding-left",
    "border",
    "border-top",
    "border-right",
    "border-bottom",
    "border-left",
    "border-color",
    "border-style",
    "border-width",
    "border-radius",
    "border-collapse",
    "border-spacing",
}


def sanitize_html(html: str | None) -> str | None:
    """The HTML body as it is stored: cleaned by nh3, or None when nothing is left."""
    if not html or not html.strip():
        return None
    cleaned = nh3.clean(
        html,
        tags=HTML_TAGS,
        attributes=HTML_ATTRIBUTES,
        url_schemes=HTML_URL_SCHEMES,
        filter_style_properties=HTML_STYLE_PROPERTIES,
        link_rel="noopener noreferrer",
    ).strip()
    return cleaned or None
