"""What a theme may hold (:mod:`api.rules.theme_css`): the ten variables, their values and the
raw CSS override. The security property, checked on arbitrary text: nothing accepted can load
a resource, run script or leave its declaration."""

from __future__ import annotations

import string

import pytest
import tinycss2
import tinycss2.ast
from hypothesis import example, given, settings
from hypothesis import strategies as st

from api.rules.theme_css import (
    DARK_DEFAULTS,
    LIGHT_DEFAULTS,
    MAX_CUSTOM_CSS_BYTES,
    REFUSED_PROPERTIES,
    THEME_VARIABLES,
    VALUE_FUNCTIONS,
    CssRefused,
    check_custom_css,
    check_value,
    check_variables,
    import_theme_file,
    is_dark,
)

# What no accepted value or override may contain (casefolded).
NEVER = ("url(", "expression", "@import", "javascript:", "<", "\\")
NEVER_IN_A_VALUE = (*NEVER, ";", "{", "}", "!", "/*", "@", ">", ":")

GOOD_VALUES = [
    "#0d0d0d",
    "#ABC",
    "#a78bfa80",
    "rebeccapurple",
    "transparent",
    "rgb(40, 42, 54)",
    "rgb(0 0 0 / 50%)",
    "hsl(265 89% 78%)",
    "oklch(0.7 0.15 300)",
    "color-mix(in srgb, #fff 20%, #000)",
    "var(--accent)",
    "calc(1px + 2px)",
    "12px",
    "1.5rem",
    '"Fira Code", "JetBrains Mono", monospace',
    "linear-gradient(90deg, #282a36 0%, #44475a 100%)",
]
BAD_VALUES = {
    "url(https://evil.example/x.png)": "url(",
    "URL( 'https://evil.example' )": "url(",
    "expression(alert(1))": "expression",
    "#fff;} body { background: red": ";",
    "red; --bg: blue": ";",
    "#fff !important": "!",
    "@import 'x'": "@import",
    "javascript:alert(1)": "javascript:",
    "red</style><script>alert(1)</script>": "<",
    "u\\72 l(https://evil.example)": "\\",
    "image-set('x.png' 1x)": "image-set",
    "attr(data-x)": "attr",
    "element(#secret)": "element",
    "red /* comment */": "/* comment */",
    "(red)": "(red)",
    "[red]": "[red]",
    "{red}": "{",
    "#12": "hex colour",
    "#ggg": "hex colour",
    "12parsecs": "unit",
    '"Fira;}Code"': "strings",
    '"<b>"': "<",
    "": "empty",
    "   ": "empty",
    "red\x00": "control",
    "a" * 301: "300",
    "calc(" * 8 + "1px" + ")" * 8: "nested",
}


@pytest.mark.parametrize("value", GOOD_VALUES)
def test_theme_value_plain_css_values_are_accepted_as_written(value: str) -> None:
    assert check_value(f"  {value} ") == value


@pytest.mark.parametrize(("value", "reason"), BAD_VALUES.items(), ids=range(len(BAD_VALUES)))
def test_theme_value_forbidden_constructs_are_refused_saying_why(value: str, reason: str) -> None:
    with pytest.raises(CssRefused) as refused:
        check_value(value)
    assert reason in refused.value.message


def _functions(tokens: list[tinycss2.ast.Node]) -> set[str]:
    found: set[str] = set()
    for token in tokens:
        if isinstance(token, tinycss2.ast.FunctionBlock):
            found |= {token.lower_name} | _functions(token.arguments)
    return found


def _kinds(tokens: list[tinycss2.ast.Node]) -> set[str]:
    found: set[str] = set()
    for token in tokens:
        found.add(token.type)
        if isinstance(token, tinycss2.ast.FunctionBlock):
            found |= _kinds(token.arguments)
    return found


CSS_ALPHABET = st.sampled_from(
    [
        *(string.ascii_letters + string.digits + " #%(),./-+*\"'!;:{}[]<>@\\\n\t_=^$~|"),
        *("url(", "expression(", "@import", "javascript:", "</style>", "/*", "*/", "\x00", "é"),
    ]
)
css_text = st.lists(CSS_ALPHABET, max_size=60).map("".join)


def _assert_safe_value(accepted: str) -> None:
    folded = accepted.casefold()
    for never in NEVER_IN_A_VALUE:
        assert never not in folded, (never, accepted)
    tokens = tinycss2.parse_component_value_list(accepted)
    assert _functions(tokens) <= VALUE_FUNCTIONS
    assert not _kinds(tokens) & {"url", "at-keyword", "comment", "error", "() block", "[] block"}
    assert check_value(accepted) == accepted  # stored values pass again when served


@settings(max_examples=600, deadline=None)
@given(css_text)
@example("u\\rl(x)")
@example("rgb(0 0 0) url(x)")
def test_theme_value_nothing_accepted_holds_a_forbidden_construct(text: str) -> None:
    try:
        accepted = check_value(text)
    except CssRefused:
        return
    _assert_safe_value(accepted)


FRAGMENTS = [
    "url(https://evil.example/a)",
    ";} body { background: red",
    "</style><script>alert(1)</script>",
    "expression(alert(1))",
    "@import 'https://evil.example/x.css'",
    "javascript:alert(1)",
    "\\75 rl(x)",
    " !important",
    "{",
    "}",
    "/* hidden */",
]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(GOOD_VALUES), st.sampled_from(FRAGMENTS), st.data())
def test_theme_value_a_good_value_with_a_forbidden_fragment_is_refused(
    value: str, fragment: str, data: st.DataObject
) -> None:
    at = data.draw(st.integers(0, len(value)))
    with pytest.raises(CssRefused):
        check_value(value[:at] + fragment + value[at:])


def test_theme_variables_only_the_ten_and_only_strings() -> None:
    assert check_variables({"--accent": " #a78bfa ", "--bg": "#000"}) == {
        "--bg": "#000",
        "--accent": "#a78bfa",
    }
    with pytest.raises(CssRefused) as unknown:
        check_variables({"--bg": "#000", "--font": "serif"})
    assert unknown.value.where == "--font"
    with pytest.raises(CssRefused) as not_text:
        check_variables({"--bg": 12})
    assert not_text.value.where == "--bg"
    with pytest.raises(CssRefused) as bad:
        check_variables({"--text-main": "url(x)"})
    assert bad.value.where == "--text-main"
    assert check_variables({}) == {}


def test_theme_defaults_set_the_ten_variables_with_valid_values() -> None:
    for defaults in (LIGHT_DEFAULTS, DARK_DEFAULTS):
        assert tuple(defaults) == THEME_VARIABLES
        assert check_variables(defaults) == dict(defaults)
    assert is_dark(DARK_DEFAULTS) is True
    assert is_dark(LIGHT_DEFAULTS) is False


def test_theme_file_import_ignores_unknown_names_and_refuses_other_shapes() -> None:
    exported = dict(DARK_DEFAULTS) | {"--font-size": "14px", "name": "mine"}
    variables, ignored = import_theme_file(exported)
    assert variables == dict(DARK_DEFAULTS)
    assert ignored == ["--font-size", "name"]
    for document in (["--bg", "#000"], "#000", None, 3):
        with pytest.raises(CssRefused):
            import_theme_file(document)
    with pytest.raises(CssRefused) as number:
        import_theme_file({"--bg": "#000", "--font-size": 14})
    assert number.value.where == "--font-size"
    with pytest.raises(CssRefused) as bad:
        import_theme_file({"--bg": "url(https://evil.example)"})
    assert bad.value.where == "--bg"


def test_theme_is_dark_reads_the_background() -> None:
    assert is_dark({"--bg": "#282a36"}) is True
    assert is_dark({"--bg": "hsl(0 0% 95%)"}) is False
    assert is_dark({"--bg": "oklch(0.25 0.02 260)"}) is True
    assert is_dark({"--bg": "lab(90 0 0)"}) is False
    assert is_dark({"--bg": "var(--x)"}) is None
    assert is_dark({"--accent": "#000"}) is None


# -- the raw CSS override ----------------------------------------------------------------------


def test_theme_custom_css_rules_are_accepted_and_re_serialized() -> None:
    css = """
    /* cards */
    .card, body > main:hover { border-radius: 12px; box-shadow: 0 1px 2px rgb(0 0 0 / 20%) }
    a:not(.plain):hover{color:var(--accent)!important}
    li:nth-child(2n+1) { background: linear-gradient(90deg, #111, #222); }
    """
    accepted = check_custom_css(css)
    assert accepted.splitlines() == [
        ".card, body > main:hover { border-radius: 12px; box-shadow: 0 1px 2px rgb(0 0 0 / 20%); }",
        "a:not(.plain):hover { color: var(--accent) !important; }",
        "li:nth-child(2n/**/+1) { background: linear-gradient(90deg, #111, #222); }",
    ]
    assert check_custom_css(accepted) == accepted
    assert check_custom_css("") == ""


BAD_CSS = {
    "@import url(https://evil.example/x.css);": "url(",
    "@import 'x.css';": "@import",
    "@font-face { font-family: x; src: local(x) }": "at-rules",
    "@media (max-width: 1px) { a { color: red } }": "at-rules",
    "a { background: url(https://evil.example/?q=1) }": "url(",
    "a { background-image: image-set('x.png' 1x) }": "image-set",
    "input[value^=a] { color: red }": "attribute selectors",
    "a::before { content: 'Please log in again' }": "content",
    "a { behavior: none }": "behavior",
    "a { -moz-binding: none }": "-moz-binding",
    "a { color: red } </style><script>alert(1)</script>": "<",
    "a { width: expression(alert(1)) }": "expression",
    "a { color: red; b { color: blue } }": "nested rules",
    "a { color: }": "a value is required",
    "{ color: red }": "needs a selector",
    "a { co\\lor: red }": "\\",
    "a:javascript:x { color: red }": "javascript:",
    "a { color: red; } } body {": "invalid CSS",
    "a(b) { color: red }": "a()",
    "a { color: attr(title) }": "attr",
    "a { x" * 5000: "16 KiB",
}


@pytest.mark.parametrize(("css", "reason"), BAD_CSS.items(), ids=range(len(BAD_CSS)))
def test_theme_custom_css_forbidden_constructs_are_refused_saying_why(
    css: str, reason: str
) -> None:
    with pytest.raises(CssRefused) as refused:
        check_custom_css(css)
    assert reason in refused.value.message


def _assert_safe_css(accepted: str) -> None:
    folded = accepted.casefold()
    for never in (*NEVER, "@", "["):
        assert never not in folded, (never, accepted)
    assert len(accepted.encode()) <= 2 * MAX_CUSTOM_CSS_BYTES
    for rule in tinycss2.parse_stylesheet(accepted, skip_comments=True, skip_whitespace=True):
        assert isinstance(rule, tinycss2.ast.QualifiedRule), rule
        for item in tinycss2.parse_blocks_contents(
            rule.content, skip_comments=True, skip_whitespace=True
        ):
            assert isinstance(item, tinycss2.ast.Declaration), item
            assert item.lower_name not in REFUSED_PROPERTIES
            assert _functions(item.value) <= VALUE_FUNCTIONS
            assert "url" not in _kinds(item.value)
    assert check_custom_css(accepted) == accepted


selectors = st.lists(
    st.sampled_from(["a", ".card", "#main", "body", ">", " ", ",", ":hover", "*", "+", "~"]),
    min_size=1,
    max_size=6,
).map("".join)
declarations = st.lists(
    st.tuples(
        st.sampled_from(["color", "background", "border", "margin", "--x", "font-family"]),
        st.one_of(st.sampled_from(GOOD_VALUES), css_text),
    ),
    max_size=4,
)
stylesheets = st.lists(
    st.tuples(selectors, declarations, st.one_of(st.just(""), css_text)), max_size=4
).map(
    lambda rules: "\n".join(
        f"{sel} {{ {'; '.join(f'{p}: {v}' for p, v in decls)} }}{noise}"
        for sel, decls, noise in rules
    )
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(css_text, stylesheets))
@example("a{b:c}@import 'x';")
@example("a{background:u/**/rl(x)}")
def test_theme_custom_css_nothing_accepted_loads_runs_or_escapes(css: str) -> None:
    try:
        accepted = check_custom_css(css)
    except CssRefused:
        return
    _assert_safe_css(accepted)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([".card", "a:hover", "body > main"]), st.sampled_from(GOOD_VALUES)
        ),
        min_size=1,
        max_size=5,
    )
)
def test_theme_custom_css_good_rules_are_kept(rules: list[tuple[str, str]]) -> None:
    css = "\n".join(f"{sel} {{ color: {value} }}" for sel, value in rules)
    accepted = check_custom_css(css)
    assert len(accepted.splitlines()) == len(rules)
    for line, (sel, _) in zip(accepted.splitlines(), rules, strict=True):
        assert line.startswith(f"{sel} {{ color: ")
