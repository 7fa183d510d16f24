"""Canonical language names: one name per language, whatever the client called it.

Editors and CLIs name the same language differently: the WakaTime CLI sends ``Python``, an
editor plugin speaking CodeTrackr's dialect its editor's id (``python``, ``typescriptreact``,
``shellscript``), a hand-written client ``PYTHON`` or nothing at all. Stats, boards and badges
must count each language once, so every heartbeat's ``language`` is rewritten here, when it is
accepted (``ingest``) and again when it is projected (``processors``: records appended before
this rule existed are merged on replay). The name the client sent stays in ``language_raw``.
A heartbeat without a known language keeps ``language = None`` (WakaTime's heartbeats say
``null`` too, and projections key its time under ``""``); reads show it as :data:`OTHER`.

The rule (:func:`canonical_language`, pure and idempotent):

* no name, a blank one, or WakaTime's placeholders ``Unknown``/``Other``: :data:`OTHER`, the
  name WakaTime's stats give time without a detected language;
* a known name or alias, in any case and spacing: WakaTime's spelling (``python`` -> ``Python``,
  ``cpp`` -> ``C++``, ``typescriptreact`` -> ``TSX``, ``golang`` -> ``Go``);
* any other name: its case-insensitive key (whitespace collapsed, case folded) in title case,
  so ``myLang``, ``MYLANG`` and ``mylang`` all become ``Mylang``. The display form depends on
  the key only, never on which spelling arrived first, so the result is the same in any order
  of arrival and on replay.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from schemas.heartbeat import Heartbeat

__all__ = [
    "OTHER",
    "canonical_language",
    "language_key",
    "merge_languages",
    "stored_language",
    "with_canonical_language",
]

# What WakaTime's stats call time whose language is unknown.
OTHER = "Other"

# WakaTime's spellings of the languages people mostly write (a selection; any other name is
# kept under its own canonical form, see the module docs).
_NAMES: tuple[str, ...] = (
    "ABAP", "ActionScript", "Ada", "Agda", "Ansible", "Apex", "AppleScript", "Arduino",
    "AsciiDoc", "Assembly", "Awk", "Bash", "Batchfile", "BibTeX", "C", "C#", "C++", "Clojure",
    "ClojureScript", "CMake", "COBOL", "CoffeeScript", "Common Lisp", "Crystal", "CSHTML",
    "CSS", "CSV", "Cuda", "Cython", "D", "Dart", "Delphi", "Diff", "Docker", "Dockerfile",
    "Elixir", "Elm", "Emacs Lisp", "Erlang", "F#", "Fish", "Fortran", "GDScript", "Gherkin",
    "Git", "Git Config", "GLSL", "Go", "Gradle", "GraphQL", "Groovy", "Haml", "Handlebars",
    "Haskell", "Haxe", "HCL", "HTML", "HTML+Django", "HTML+Razor", "INI", "Java",
    "JavaScript", "JSON", "JSON with Comments", "JSON5", "JSX", "Julia", "Jupyter Notebook",
    "Kotlin", "LaTeX", "LESS", "Liquid", "Lua", "Makefile", "Markdown", "Matlab", "Meson",
    "Nix", "Objective-C", "Objective-C++", "OCaml", "Pascal", "Perl", "PHP", "PowerShell",
    "Prolog", "Protocol Buffer", "Pug", "Puppet", "PureScript", "Python", "QML", "R", "Racket",
    "Raku", "Reason", "reStructuredText", "Ruby", "Rust", "Sass", "Scala", "Scheme", "SCSS",
    "Shell", "Smalltalk", "Solidity", "SQL", "Svelte", "Swift", "Tcl", "Terraform", "TeX",
    "Text", "TOML", "TSX", "Twig", "TypeScript", "Vala", "VB.NET", "Verilog", "VHDL",
    "Vim script", "Vue.js", "WebAssembly", "XML", "XSLT", "YAML", "Zig", OTHER,
)  # fmt: skip

# Other names for them: VS Code / language-server ids, Vim filetypes, file extensions and
# common spellings. Keys are already in key form (see language_key).
_ALIASES: dict[str, str] = {
    # VS Code language identifiers that differ from the name
    "bat": "Batchfile",
    "cpp": "C++",
    "csharp": "C#",
    "cuda-cpp": "Cuda",
    "dockercompose": "YAML",
    "fsharp": "F#",
    "git-commit": "Git",
    "git-rebase": "Git",
    "jade": "Pug",
    "javascriptreact": "JSX",
    "jsonc": "JSON with Comments",
    "objective-cpp": "Objective-C++",
    "perl6": "Raku",
    "plaintext": "Text",
    "razor": "HTML+Razor",
    "shellscript": "Bash",
    "typescriptreact": "TSX",
    "vb": "VB.NET",
    "vue": "Vue.js",
    "vue-html": "Vue.js",
    "xsl": "XSLT",
    # Vim / Neovim filetypes
    "cs": "C#",
    "dosbatch": "Batchfile",
    "gitcommit": "Git",
    "gitconfig": "Git Config",
    "htmldjango": "HTML+Django",
    "make": "Makefile",
    "plaintex": "TeX",
    "proto": "Protocol Buffer",
    "sh": "Bash",
    "vim": "Vim script",
    "viml": "Vim script",
    "zsh": "Bash",
    # extensions and everyday spellings
    "c sharp": "C#",
    "c plus plus": "C++",
    "golang": "Go",
    "js": "JavaScript",
    "kt": "Kotlin",
    "md": "Markdown",
    "node": "JavaScript",
    "nodejs": "JavaScript",
    "objc": "Objective-C",
    "ps1": "PowerShell",
    "py": "Python",
    "python3": "Python",
    "python 3": "Python",
    "rb": "Ruby",
    "rs": "Rust",
    "ts": "TypeScript",
    "txt": "Text",
    "vuejs": "Vue.js",
    "yml": "YAML",
    # placeholders for "not detected"
    "none": OTHER,
    "null": OTHER,
    "unknown": OTHER,
}


def language_key(name: str) -> str:
    """The case-insensitive key of a name: whitespace runs collapsed to one space, case folded."""
    return " ".join(name.split()).casefold()


_BY_KEY: dict[str, str] = {language_key(name): name for name in _NAMES} | _ALIASES


def _display(key: str) -> str:
    """The display form of an unknown language's key: title case (``brand new lang`` ->
    ``Brand New Lang``, ``my-dsl`` -> ``My-Dsl``), as most language names are written, when that
    reads back as the same key (a few letters change under case mapping: keep those as is)."""
    shown = key.title()
    return shown if language_key(shown) == key else key


@lru_cache(maxsize=4096)  # a user's heartbeats carry a handful of names; replays read millions
def canonical_language(name: str | None) -> str:
    """The one name stats show for ``name`` (see the module docs); never empty."""
    key = language_key(name) if name else ""
    if not key:
        return OTHER
    return _BY_KEY.get(key) or _display(key)


def stored_language(name: str | None) -> str | None:
    """What a heartbeat's ``language`` holds: the canonical name, or None when it is
    :data:`OTHER` (no name, or a placeholder such as ``Unknown``)."""
    canonical = canonical_language(name)
    return None if canonical == OTHER else canonical


def with_canonical_language(heartbeat: Heartbeat) -> Heartbeat:
    """``heartbeat`` with its :func:`stored_language`, the name its client sent in
    ``language_raw``.

    A heartbeat recorded before ``language_raw`` existed has none set: its ``language`` is what
    the client sent. A newer one already went through :func:`canonical_language` at ingest and
    comes back unchanged (the same object), so projecting it again costs no copy.
    """
    language = stored_language(heartbeat.language)
    if "language_raw" in heartbeat.model_fields_set:
        if language == heartbeat.language:
            return heartbeat
        return heartbeat.model_copy(update={"language": language})
    return heartbeat.model_copy(update={"language": language, "language_raw": heartbeat.language})


def merge_languages(seconds: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Seconds per canonical language: what rows projected before the rule hold under several
    spellings (``python``, ``Python``, ``""``) is read as one language."""
    merged: dict[str, float] = {}
    for name, value in seconds:
        key = canonical_language(name)
        merged[key] = merged.get(key, 0.0) + value
    return merged
