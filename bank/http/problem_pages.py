"""The problem catalogue as pages a person reads (Japanese and English), for a browser that
follows a problem's `type` link. Same standard as the sign-in pages: server-rendered, no
script, styles from the bank's own origin, the same stylesheet and the same language switch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import DictLoader, Environment, select_autoescape

from bank.errors import Language, ProblemType
from bank.http.language import preferred_language

HTML = "text/html"  # Litestar adds "; charset=utf-8" (the app's response encoding)
# The sign-in pages' policy: nothing but our own stylesheet, no forms, no frames.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
STYLESHEET = "/static/identity/bank.css"  # the sign-in pages' own, so both look alike

_TEXT: dict[str, dict[Language, str]] = {
    "bank_name": {"ja": "さっぽろ市民情報銀行", "en": "Sapporo City Information Bank"},
    "switch_to": {"ja": "English", "en": "日本語"},
    "switch_label": {"ja": "Language / 言語", "en": "言語 / Language"},
    "catalogue": {"ja": "エラーコード一覧", "en": "Problem codes"},
    "intro": {
        "ja": "API のエラーは RFC 9457 の application/problem+json で返ります。`code` は変わらず、"
        "`type` はこのページ(/problems/コード)を指します。`detail` は Accept-Language に従い"
        "日本語か英語で返ります。",
        "en": "The API answers every error as RFC 9457 application/problem+json. Its `code` "
        "never changes and its `type` links to this page (/problems/<code>). `detail` is in "
        "Japanese or English, as Accept-Language asks.",
    },
    "code": {"ja": "コード", "en": "Code"},
    "status": {"ja": "HTTP ステータス", "en": "HTTP status"},
    "title": {"ja": "名前", "en": "Title"},
    "meaning": {"ja": "意味", "en": "What it means"},
    "other_language": {"ja": "英語での名前", "en": "In Japanese"},
    "back": {"ja": "エラーコード一覧へ", "en": "All problem codes"},
    "docs": {"ja": "API ドキュメント", "en": "API documentation"},
    "json_hint": {
        "ja": "プログラムからは Accept: application/json で同じ内容を JSON で取得できます。",
        "en": "Programs get the same as JSON with Accept: application/json.",
    },
}

_BASE = """<!doctype html>
<html lang="{{ lang }}">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{{ heading }} | {{ t.bank_name }}</title>
  <link rel="stylesheet" href="{{ stylesheet }}">
</head>
<body>
  <header>
    <p class="brand">{{ t.bank_name }}</p>
    <nav aria-label="{{ t.switch_label }}">
      <a href="{{ switch_url }}" lang="{{ other }}" hreflang="{{ other }}">{{ t.switch_to }}</a>
    </nav>
  </header>
  <main id="main">
    <h1>{{ heading }}</h1>
    {% block content %}{% endblock %}
  </main>
</body>
</html>
"""

_LIST = """{% extends "base" %}{% block content %}
<p>{{ t.intro }}</p>
<ul class="problems">
{% for p in problems %}
  <li>
    <a href="/problems/{{ p.code }}?lang={{ lang }}"><code>{{ p.code }}</code></a>
    ({{ p.status }}): {{ p.title_in(lang) }}
  </li>
{% endfor %}
</ul>
<p>{{ t.json_hint }}</p>
<p><a href="/docs">{{ t.docs }}</a></p>
{% endblock %}"""

_ONE = """{% extends "base" %}{% block content %}
<dl>
  <dt>{{ t.code }}</dt><dd><code>{{ problem.code }}</code></dd>
  <dt>{{ t.status }}</dt><dd>{{ problem.status }}</dd>
  <dt>{{ t.meaning }}</dt><dd>{{ problem.description_in(lang) }}</dd>
  <dt>{{ t.other_language }}</dt>
  <dd lang="{{ other }}">{{ problem.title_in(other) }}: {{ problem.description_in(other) }}</dd>
</dl>
<p>{{ t.json_hint }}</p>
<p><a href="/problems?lang={{ lang }}">{{ t.back }}</a></p>
{% endblock %}"""


class _Templates:
    def __init__(self) -> None:
        self.env = Environment(
            loader=DictLoader({"base": _BASE, "list": _LIST, "one": _ONE}),
            autoescape=select_autoescape(default=True, default_for_string=True),
            auto_reload=False,
        )

    def render(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(**context)


_TEMPLATES = _Templates()


@dataclass(frozen=True)
class PageLanguage:
    lang: Language
    other: Language


def page_language(query_lang: str | None, accept_language: str | None) -> PageLanguage:
    """`?lang=` (the switch), else Accept-Language, else Japanese: as the sign-in pages."""
    lang: Language
    if query_lang in ("ja", "en"):
        lang = "ja" if query_lang == "ja" else "en"
    else:
        lang = preferred_language(accept_language, default="ja")
    return PageLanguage(lang, "en" if lang == "ja" else "ja")


def _texts(lang: Language) -> dict[str, str]:
    return {key: value[lang] for key, value in _TEXT.items()}


def catalogue_page(problems: list[ProblemType], language: PageLanguage) -> str:
    return _TEMPLATES.render(
        "list",
        lang=language.lang,
        other=language.other,
        t=_texts(language.lang),
        heading=_TEXT["catalogue"][language.lang],
        problems=problems,
        stylesheet=STYLESHEET,
        switch_url=f"/problems?lang={language.other}",
    )


def problem_page(problem: ProblemType, language: PageLanguage) -> str:
    return _TEMPLATES.render(
        "one",
        lang=language.lang,
        other=language.other,
        t=_texts(language.lang),
        heading=problem.title_in(language.lang),
        problem=problem,
        stylesheet=STYLESHEET,
        switch_url=f"/problems/{problem.code}?lang={language.other}",
    )
