"""The dashboard's two dictionaries hold the same keys, and every key a page names
literally (``t("...")``) is in them: a missing string would show as its key."""

from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "src" / "klinewatch" / "web" / "static"
KEY = re.compile(r'^\s*"([\w.\-]+)":', re.MULTILINE)
USED = re.compile(r'\bt\("([\w.\-]+)"')
DATA_I18N = re.compile(r'data-i18n="([\w.\-]+)"')


def keys(language: str) -> set[str]:
    return set(KEY.findall((STATIC / "js" / "i18n" / f"{language}.js").read_text("utf-8")))


def test_english_and_chinese_have_the_same_keys() -> None:
    english, chinese = keys("en"), keys("zh")
    assert len(english) > 100
    assert english - chinese == set() and chinese - english == set()


def test_every_key_a_page_names_exists() -> None:
    sources = [p.read_text("utf-8") for p in (STATIC / "js").rglob("*.js") if "i18n" not in p.parts]
    sources.append((STATIC.parent / "pages.py").read_text("utf-8"))
    used = {k for text in sources for k in USED.findall(text) + DATA_I18N.findall(text)}
    assert len(used) > 50
    assert used - keys("en") == set()
