"""Extract the translatable strings from the source (Babel) and merge them into every catalogue.

Run `python scripts/update_catalogues.py` after adding or changing a `L._("...")` string; then
fill the empty `msgstr` entries of `src/careblocks/locale/<lang>/LC_MESSAGES/careblocks.po`.
tests/test_i18n.py fails while a catalogue misses an id or has an empty or fuzzy entry.
Translations of ids that disappear are dropped (kept out of the files, not marked obsolete).
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "careblocks"
sys.path.insert(0, str(ROOT / "src"))

from careblocks.i18n import DOMAIN, LANGUAGES  # noqa: E402

KEYWORDS = {"_": None, "ngettext": (1, 2), "N_": None}


def extract() -> Catalog:
    """Every message id in the package's Python source, with where it is used."""
    template = Catalog(domain=DOMAIN, project="careblocks")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(SRC), method_map=[("**.py", "python")], keywords=KEYWORDS, comment_tags=("TRANSLATORS:",),
        strip_comment_tags=True,
    ):
        template.add(message, None, [(f"src/careblocks/{filename}", lineno)],
                     auto_comments=comments, context=context)
    return template


def update(template: Catalog) -> dict[str, int]:
    missing = {}
    for lang in LANGUAGES:
        if lang == "en":
            continue
        path = SRC / "locale" / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
        if path.exists():
            with path.open("rb") as f:
                cat = read_po(f, locale=lang, domain=DOMAIN)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            cat = Catalog(locale=lang, domain=DOMAIN, project="careblocks")
        created = cat.creation_date  # keep the header stable: no diff when nothing changed
        cat.update(template, no_fuzzy_matching=True)
        cat.creation_date = created
        cat.fuzzy = False
        cat.obsolete.clear()
        with path.open("wb") as f:
            write_po(f, cat, width=100, omit_header=False, sort_output=False, include_lineno=False)
        missing[lang] = sum(1 for m in cat if m.id and not m.string)
    return missing


def main() -> int:
    template = extract()
    missing = update(template)
    print(f"{len(template)} message ids")
    for lang, n in missing.items():
        print(f"  {lang}: {n} untranslated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
