"""What a theme may contain: the ten CSS variables, their values, and the raw CSS override.

Themes are cosmetic: a theme must never run script, load anything or send anything anywhere.
Every value is parsed with a real CSS tokenizer (``tinycss2``, CSS Syntax Level 3, the grammar
browsers parse) and accepted only when each token is of a kind on the list below. A value holds
no comment and no escape, so the browser reads the same tokens from it; the raw CSS override is
stored re-serialized from its parsed rules, so what is served is exactly the structure that was
checked, comments dropped. Pure: no I/O.

A **value** (of a variable, or of a declaration in the raw CSS) is a sequence of:

* identifiers of ASCII letters, digits and ``-`` (``red``, ``transparent``, ``sans-serif``,
  ``--accent`` inside ``var()``);
* hex colours (``#rgb``, ``#rgba``, ``#rrggbb``, ``#rrggbbaa``);
* numbers, percentages and numbers with a known unit (``12px``, ``1.5rem``, ``90deg``);
* quoted strings (font names) of letters of any script, digits, spaces and ``_ . , + -``;
* ``,`` ``/`` ``+`` ``-`` ``*`` and whitespace;
* the functions in :data:`VALUE_FUNCTIONS` (colours, ``var``, ``calc`` and its kin, gradients),
  whose arguments follow these same rules.

Nothing else: no ``url()`` or any other function (``expression``, ``image``, ``image-set``,
``attr``...), no at-keyword, no ``!``, no ``:``, ``;``, braces, brackets or parentheses outside
those functions, no comments, no backslash escapes, no ``<`` or ``>``, no control characters.
Before tokenizing, text holding ``url(``, ``expression``, ``@import``, ``javascript:``, ``<``,
a backslash or a control character is refused outright (case-insensitive), so no spelling of
them gets through.

The **raw CSS override** (``custom_css``, at most :data:`MAX_CUSTOM_CSS_BYTES`) is a list of
style rules ``selector { property: value; ... }`` and nothing else:

* **every at-rule is refused** (``@import``, ``@font-face``, ``@media``, ``@namespace``...), and
  so is every ``url()``: refusing all of them is the simplest rule that leaves no way to load a
  resource from another origin (or this one);
* selectors: type, class, id, universal and pseudo-class/element selectors, combinators
  (`` ``, ``>``, ``+``, ``~``, ``,``) and the functions in :data:`SELECTOR_FUNCTIONS`
  (``:not()``, ``:is()``, ``:nth-child()``...). Attribute selectors (``[value^=a]``) are
  refused: with a request they are how CSS reads a page's text out, and a theme needs none;
* declarations: a property name (ASCII), a value as above, optionally ``!important``; the
  properties in :data:`REFUSED_PROPERTIES` (``content``, which writes text into the page, and
  the old binding properties that ran script) are refused; nested rules are refused.

The override is refused, never trimmed: an author learns what was wrong (``details`` name it)
instead of publishing a theme that silently looks different.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import tinycss2
import tinycss2.ast
import tinycss2.color4

# The ten design tokens of the seed, in its order.
THEME_VARIABLES: Final = (
    "--bg",
    "--bg-card",
    "--bg-input",
    "--bg-hover",
    "--text-main",
    "--text-muted",
    "--text-dark",
    "--border",
    "--border-focus",
    "--accent",
)
KNOWN_VARIABLES: Final = frozenset(THEME_VARIABLES)

# The built-in themes (the web app's stylesheet defaults): light, and dark for
# ``prefers-color-scheme: dark``. What a variable no theme sets falls back to.
LIGHT_DEFAULTS: Final[Mapping[str, str]] = {
    "--bg": "#f7f7f8",
    "--bg-card": "#ffffff",
    "--bg-input": "#ffffff",
    "--bg-hover": "#eef0f3",
    "--text-main": "#16161a",
    "--text-muted": "#4b5563",
    "--text-dark": "#6b7280",
    "--border": "#dcdfe4",
    "--border-focus": "#2563eb",
    "--accent": "#2563eb",
}
DARK_DEFAULTS: Final[Mapping[str, str]] = {
    "--bg": "#121212",
    "--bg-card": "#18181b",
    "--bg-input": "#1f1f23",
    "--bg-hover": "#27272a",
    "--text-main": "#ffffff",
    "--text-muted": "#a1a1aa",
    "--text-dark": "#8b8b94",
    "--border": "#27272a",
    "--border-focus": "#60a5fa",
    "--accent": "#60a5fa",
}

MAX_VALUE_CHARS: Final = 300
MAX_STRING_CHARS: Final = 100
MAX_NESTING: Final = 6
MAX_CUSTOM_CSS_BYTES: Final = 16 * 1024
MAX_RULES: Final = 300

VALUE_FUNCTIONS: Final = frozenset(
    {
        "rgb",
        "rgba",
        "hsl",
        "hsla",
        "hwb",
        "lab",
        "lch",
        "oklab",
        "oklch",
        "color",
        "color-mix",
        "light-dark",
        "var",
        "calc",
        "min",
        "max",
        "clamp",
        "linear-gradient",
        "radial-gradient",
        "conic-gradient",
        "repeating-linear-gradient",
        "repeating-radial-gradient",
        "repeating-conic-gradient",
    }
)
SELECTOR_FUNCTIONS: Final = frozenset(
    {
        "not",
        "is",
        "where",
        "has",
        "nth-child",
        "nth-last-child",
        "nth-of-type",
        "nth-last-of-type",
    }
)
UNITS: Final = frozenset(
    {
        "px",
        "em",
        "rem",
        "ex",
        "ch",
        "vw",
        "vh",
        "vmin",
        "vmax",
        "pt",
        "pc",
        "cm",
        "mm",
        "in",
        "q",
        "deg",
        "rad",
        "grad",
        "turn",
        "s",
        "ms",
        "fr",
        "x",
        "dpi",
        "dppx",
    }
)
REFUSED_PROPERTIES: Final = frozenset(
    {"content", "behavior", "-ms-behavior", "-moz-binding", "binding", "src"}
)
# Refused wherever they appear, before tokenizing (casefolded text).
FORBIDDEN_TEXT: Final = ("url(", "expression", "@import", "javascript:", "<", "\\")

_VALUE_LITERALS = frozenset({",", "/", "+", "-", "*"})
_SELECTOR_LITERALS = frozenset({".", ",", ">", "+", "~", "*", ":"})
_IDENT = re.compile(r"^-{0,2}[A-Za-z_][A-Za-z0-9_-]*$")
_HEX = re.compile(r"^(?:[0-9A-Fa-f]{3,4}|[0-9A-Fa-f]{6}|[0-9A-Fa-f]{8})$")
_PROPERTY = re.compile(r"^(?:--[A-Za-z0-9_-]+|-?[a-z][a-z0-9-]*)$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_STRING_OK = re.compile(r"^[\w .,+-]*$")  # letters (any script), digits, space, _ . , + -


class CssRefused(ValueError):
    """Why a theme value or override is refused; ``where`` names the variable or the place."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where


# -- values ----------------------------------------------------------------------------------


def check_value(value: str) -> str:
    """The value as it will be stored and served (trimmed), or :class:`CssRefused`."""
    return _checked_value(value)


@functools.lru_cache(maxsize=4096)
def _checked_value(value: str) -> str:
    # Cached: the read routes check every value they serve again, and values repeat.
    text = value.strip()
    if not text:
        raise CssRefused("must not be empty")
    if len(text) > MAX_VALUE_CHARS:
        raise CssRefused(f"at most {MAX_VALUE_CHARS} characters")
    _refuse_forbidden_text(text, newlines=False)
    _check_value_tokens(tinycss2.parse_component_value_list(text), depth=0)
    # Kept as written (trimmed): it has no comment, so the browser's tokenizer (the same CSS
    # Syntax Level 3) reads exactly the tokens checked here. Re-serializing could add ``/**/``
    # between tokens, which a value may not hold.
    return text


def _refuse_forbidden_text(text: str, *, newlines: bool) -> None:
    folded = text.casefold()
    for forbidden in FORBIDDEN_TEXT:
        if forbidden in folded:
            raise CssRefused(f"{forbidden!r} is not allowed in a theme")
    control = _CONTROL.search(text.replace("\n", "").replace("\t", "") if newlines else text)
    if control is not None:
        raise CssRefused("control characters are not allowed")


def _check_value_tokens(tokens: Iterable[tinycss2.ast.Node], *, depth: int) -> None:
    if depth > MAX_NESTING:
        raise CssRefused(f"functions nested deeper than {MAX_NESTING} levels")
    for token in tokens:
        _check_value_token(token, depth)


def _check_value_token(token: tinycss2.ast.Node, depth: int) -> None:
    if isinstance(token, tinycss2.ast.WhitespaceToken):
        return
    if isinstance(token, tinycss2.ast.IdentToken):
        if not _IDENT.match(token.value):
            raise CssRefused(f"{token.value!r} is not a plain identifier")
        return
    if isinstance(token, tinycss2.ast.HashToken):
        if not _HEX.match(token.value):
            raise CssRefused(f"'#{token.value}' is not a hex colour (#rgb, #rrggbb, #rrggbbaa)")
        return
    if isinstance(token, tinycss2.ast.NumberToken | tinycss2.ast.PercentageToken):
        return
    if isinstance(token, tinycss2.ast.DimensionToken):
        if token.lower_unit not in UNITS:
            raise CssRefused(f"unknown unit {token.unit!r}")
        return
    if isinstance(token, tinycss2.ast.StringToken):
        if len(token.value) > MAX_STRING_CHARS or not _STRING_OK.match(token.value):
            raise CssRefused(
                f"strings are font names: at most {MAX_STRING_CHARS} letters, digits, "
                "spaces and _ . , + -"
            )
        return
    if isinstance(token, tinycss2.ast.LiteralToken) and token.value in _VALUE_LITERALS:
        return
    if isinstance(token, tinycss2.ast.FunctionBlock):
        if token.lower_name not in VALUE_FUNCTIONS:
            raise CssRefused(f"the function {token.name}() is not allowed")
        _check_value_tokens(token.arguments, depth=depth + 1)
        return
    raise CssRefused(f"{_describe(token)} is not allowed in a value")


def _describe(token: tinycss2.ast.Node) -> str:
    if isinstance(token, tinycss2.ast.ParseError):
        return f"invalid CSS ({token.message})"
    shown = tinycss2.serialize([token])
    return repr(shown[:40]) if shown.strip() else token.type


# -- the ten variables -----------------------------------------------------------------------


def check_variables(given: Mapping[str, object]) -> dict[str, str]:
    """The variables of a publish or an apply, checked, in the seed's order.

    Unknown names are refused (only the ten are a theme's), and so is any value that is not a
    string passing :func:`check_value`. :class:`CssRefused`'s ``where`` names the variable.
    """
    unknown = sorted(set(given) - KNOWN_VARIABLES)
    if unknown:
        raise CssRefused(
            f"unknown variable {unknown[0]!r}: a theme sets only {', '.join(THEME_VARIABLES)}",
            unknown[0],
        )
    return _checked(given)


def _checked(given: Mapping[str, object]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for name in THEME_VARIABLES:
        if name not in given:
            continue
        value = given[name]
        if not isinstance(value, str):
            raise CssRefused("must be a string", name)
        try:
            checked[name] = check_value(value)
        except CssRefused as exc:
            raise CssRefused(exc.message, name) from None
    return checked


def import_theme_file(document: object) -> tuple[dict[str, str], list[str]]:
    """A ``codetrackr-theme.json`` (an object of variable name -> value) as the web app imports
    it: the known variables checked, unknown names ignored (returned, sorted). A document that
    is not an object of strings is refused."""
    if not isinstance(document, dict):
        raise CssRefused("a theme file is a JSON object mapping variable names to values")
    for name, value in document.items():
        if not isinstance(value, str):
            raise CssRefused("every value of a theme file must be a string", str(name))
    ignored = sorted(str(name) for name in document if name not in KNOWN_VARIABLES)
    return _checked(document), ignored


def served_variables(stored: Mapping[str, str]) -> dict[str, str]:
    """Stored variables as they may be served: the known ones that pass today's checks (a
    record written under an older, looser rule is left out rather than served)."""
    served: dict[str, str] = {}
    for name in THEME_VARIABLES:
        value = stored.get(name)
        if value is None:
            continue
        try:
            served[name] = check_value(value)
        except CssRefused:
            continue
    return served


def is_dark(variables: Mapping[str, str]) -> bool | None:
    """Whether ``--bg`` is a dark colour (darker than mid grey: relative luminance under 0.18,
    i.e. L* under 50), None when it is not set, not a plain colour (a gradient, a ``var()``) or
    in a colour space this does not convert (``color(display-p3 ...)``)."""
    value = variables.get("--bg")
    parsed = tinycss2.color4.parse_color(value) if value is not None else None
    if not isinstance(parsed, tinycss2.color4.Color):
        return None
    space = getattr(parsed, "space", None)  # not in the type stubs
    if space in ("hsl", "hwb"):
        parsed, space = parsed.to("srgb"), "srgb"
    if space == "srgb":
        luminance = sum(
            weight * _linear(parsed[i]) for i, weight in enumerate((0.2126, 0.7152, 0.0722))
        )
        return luminance < _MID_GREY
    if space in ("lab", "lch"):
        return parsed[0] < 50
    if space in ("oklab", "oklch"):
        return parsed[0] ** 3 < _MID_GREY  # OKLab's lightness is about the cube root of Y
    return None


_MID_GREY = 0.18  # the luminance Y of L* = 50


def _linear(channel: float | None) -> float:
    c = min(max(channel or 0.0, 0.0), 1.0)
    return c / 12.92 if c <= 0.04045 else float(((c + 0.055) / 1.055) ** 2.4)


# -- the raw CSS override ----------------------------------------------------------------------


def check_custom_css(text: str) -> str:
    """The override as it will be stored and served (re-serialized rules, one a line; ``""``
    for nothing), or :class:`CssRefused` saying what is not allowed."""
    return _checked_custom_css(text)


@functools.lru_cache(maxsize=256)
def _checked_custom_css(text: str) -> str:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CUSTOM_CSS_BYTES:
        raise CssRefused(f"at most {MAX_CUSTOM_CSS_BYTES // 1024} KiB")
    _refuse_forbidden_text(text, newlines=True)
    if "@" in text:
        raise CssRefused("at-rules (@import, @font-face, @media...) are not allowed")
    rules = tinycss2.parse_stylesheet(text, skip_comments=True, skip_whitespace=True)
    if len(rules) > MAX_RULES:
        raise CssRefused(f"at most {MAX_RULES} rules")
    return "\n".join(_checked_rule(rule, number) for number, rule in enumerate(rules, 1))


def _checked_rule(rule: tinycss2.ast.Node, number: int) -> str:
    where = f"rule {number}"
    if isinstance(rule, tinycss2.ast.AtRule):
        raise CssRefused(f"@{rule.at_keyword} is not allowed (no at-rules)", where)
    if not isinstance(rule, tinycss2.ast.QualifiedRule):
        raise CssRefused(_describe(rule), where)
    try:
        _check_selector(rule.prelude, depth=0)
    except CssRefused as exc:
        raise CssRefused(f"selector: {exc.message}", where) from None
    selector = tinycss2.serialize(rule.prelude).strip()
    if not selector:
        raise CssRefused("a rule needs a selector", where)
    contents = tinycss2.parse_blocks_contents(
        rule.content, skip_comments=True, skip_whitespace=True
    )
    declarations = [_checked_declaration(item, where) for item in contents]
    return f"{selector} {{ {' '.join(declarations)} }}"


def _check_selector(tokens: Sequence[tinycss2.ast.Node], *, depth: int) -> None:
    if depth > MAX_NESTING:
        raise CssRefused(f"selector functions nested deeper than {MAX_NESTING} levels")
    for token in tokens:
        if isinstance(token, tinycss2.ast.WhitespaceToken):
            continue
        if isinstance(token, tinycss2.ast.IdentToken | tinycss2.ast.HashToken):
            if not _IDENT.match(token.value):
                raise CssRefused(f"{token.value!r} is not a plain name")
            continue
        if isinstance(token, tinycss2.ast.LiteralToken) and token.value in _SELECTOR_LITERALS:
            continue
        if isinstance(token, tinycss2.ast.NumberToken | tinycss2.ast.DimensionToken) and depth:
            continue  # :nth-child(2n+1)
        if isinstance(token, tinycss2.ast.FunctionBlock):
            if token.lower_name not in SELECTOR_FUNCTIONS:
                raise CssRefused(f":{token.name}() is not allowed")
            _check_selector(token.arguments, depth=depth + 1)
            continue
        if isinstance(token, tinycss2.ast.SquareBracketsBlock):
            raise CssRefused("attribute selectors ([...]) are not allowed")
        raise CssRefused(f"{_describe(token)} is not allowed")


def _checked_declaration(item: tinycss2.ast.Node, where: str) -> str:
    if isinstance(item, tinycss2.ast.QualifiedRule):
        raise CssRefused("nested rules are not allowed", where)
    if isinstance(item, tinycss2.ast.AtRule):
        raise CssRefused(f"@{item.at_keyword} is not allowed (no at-rules)", where)
    if not isinstance(item, tinycss2.ast.Declaration):
        raise CssRefused(_describe(item), where)
    name = item.lower_name if not item.name.startswith("--") else item.name
    if not _PROPERTY.match(name):
        raise CssRefused(f"{item.name!r} is not a property name", where)
    if name in REFUSED_PROPERTIES:
        raise CssRefused(f"the property {name!r} is not allowed", where)
    if not [t for t in item.value if not isinstance(t, tinycss2.ast.WhitespaceToken)]:
        raise CssRefused(f"{name}: a value is required", where)
    try:
        _check_value_tokens(item.value, depth=0)
    except CssRefused as exc:
        raise CssRefused(f"{name}: {exc.message}", where) from None
    value = tinycss2.serialize(item.value).strip()
    if len(value) > MAX_VALUE_CHARS:
        raise CssRefused(f"{name}: at most {MAX_VALUE_CHARS} characters", where)
    return f"{name}: {value}{' !important' if item.important else ''};"


def served_custom_css(stored: str) -> str:
    """A stored override as it may be served: ``""`` unless it passes today's checks."""
    if not stored:
        return ""
    try:
        return check_custom_css(stored)
    except CssRefused:
        return ""
