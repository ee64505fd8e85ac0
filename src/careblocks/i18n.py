"""The language of what people read: gettext catalogues (Babel) and locale-aware numbers.

Every sentence a council member, planner or GIS user reads (report, map, CLI summary, the
GeoPackage's rationale and labels) goes through one :class:`Language` object::

    from careblocks.i18n import language
    L = language("es")                      # or language(config.outputs.language)
    L._("Proposed Care Blocks")             # 'Manzanas del Cuidado propuestas'
    L._("Serves {people} people").format(people=L.integer(176000))
    L.percent(0.613)                        # '61 %'
    L.number(10.94, 1)                      # '10,9'

Catalogues are the ``.po`` files in ``careblocks/locale/<lang>/LC_MESSAGES/careblocks.po``,
shipped as package data and compiled in memory when first used (Babel's ``read_po`` and
``write_mo``), so a fresh checkout needs no build step. Message ids are the English text;
English needs no catalogue. To add a string: wrap it in ``L._(...)`` and run
``python scripts/update_catalogues.py``, which re-extracts the ids (Babel) and merges them
into every catalogue; then translate the empty entries (a test fails while any is empty).
To add a language: add its code to :data:`LANGUAGES` and run the same script.
"""

from __future__ import annotations

import datetime as _dt
import gettext
import io
import math
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["LANGUAGES", "Language", "language", "catalogue_path"]

#: languages with a catalogue (``outputs.language``); English is the source language
LANGUAGES = ("en", "es", "pt", "fr")
DOMAIN = "careblocks"


def catalogue_path(lang: str):
    """The ``.po`` file of a language (a :mod:`importlib.resources` traversable)."""
    return resources.files("careblocks").joinpath("locale", lang, "LC_MESSAGES", f"{DOMAIN}.po")


@cache
def _translations(lang: str) -> gettext.NullTranslations:
    if lang == "en":
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import Translations

    with catalogue_path(lang).open("rb") as f:
        catalog = read_po(f, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


class Language:
    """Translations and number/date formats of one language (see the module docstring)."""

    def __init__(self, code: str = "en") -> None:
        if code not in LANGUAGES:
            raise ValueError(f"unknown language {code!r}; one of {', '.join(LANGUAGES)}")
        from babel import Locale

        self.code = code
        self.locale = Locale.parse(code)
        self._t = _translations(code)

    # -- text ---------------------------------------------------------------------------
    def _(self, message: str) -> str:
        """The translation of an English message id."""
        return self._t.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._t.ngettext(singular, plural, n)

    def join(self, parts: list[str]) -> str:
        """``a, b and c`` in this language (Babel's list patterns)."""
        from babel.lists import format_list

        return format_list(list(parts), locale=self.locale) if parts else ""

    # -- numbers and dates ----------------------------------------------------------------
    def number(self, value: Any, decimals: int = 0) -> str:
        """A number with this language's separators and a fixed number of decimals."""
        from babel.numbers import format_decimal

        v = float(value)
        if not math.isfinite(v):
            return "–"
        pattern = "#,##0" + ("." + "0" * decimals if decimals > 0 else "")
        return format_decimal(round(v, decimals), format=pattern, locale=self.locale)

    def integer(self, value: Any) -> str:
        return self.number(value, 0)

    def rounded(self, value: Any) -> str:
        """A count rounded for people (< 100 exact, < 1,000 to 10, < 100,000 to 100, else
        to 1,000), with separators; the exact figure stays in the GeoPackage."""
        v = float(value)
        if not math.isfinite(v):
            return "–"
        step = 1 if abs(v) < 100 else 10 if abs(v) < 1_000 else 100 if abs(v) < 100_000 else 1_000
        return self.integer(round(v / step) * step)

    def smart(self, value: Any) -> str:
        """A measured quantity: no decimals from 100 up, else three significant digits."""
        v = float(value)
        if not math.isfinite(v):
            return "–"
        if abs(v) >= 100 or v == 0:
            return self.integer(v)
        if abs(v) < 0.005:
            return self.number(0, 0)
        digits = max(0, 2 - int(math.floor(math.log10(abs(v)))))
        return self.number(v, min(digits, 2))

    def percent(self, share: Any, decimals: int = 0) -> str:
        """A share 0-1 as a percentage in this language's pattern (``61 %`` in French)."""
        from babel.numbers import format_percent

        v = float(share)
        if not math.isfinite(v):
            return "–"
        pattern = None
        if decimals:
            pattern = self.locale.percent_formats[None].pattern.replace("0", "0." + "0" * decimals, 1)
        return format_percent(v, format=pattern, locale=self.locale)

    def points(self, delta_share: Any) -> str:
        """A change of a share, in percentage points with a sign (``+12 pts``)."""
        v = float(delta_share)
        if not math.isfinite(v):
            return "–"
        sign = "+" if v > 0.005 else "−" if v < -0.005 else "±"
        return self._("{sign}{value} pts").format(sign=sign, value=self.integer(abs(100 * v)))

    def date(self, value: Any) -> str:
        """A date (``date``, ``datetime`` or ISO text) in this language's long format."""
        from babel.dates import format_date

        if isinstance(value, str):
            try:
                value = _dt.date.fromisoformat(value[:10])
            except ValueError:
                return value
        return format_date(value, format="long", locale=self.locale)

    def minutes(self, value: Any) -> str:
        """``15 min``, ``12.3456789 min``: the threshold with every decimal its column names
        carry (:func:`careblocks.columns.threshold_tag`), in this language's separators."""
        from careblocks.columns import threshold_tag

        v = float(value)
        tag = threshold_tag(v)
        decimals = len(tag.partition(".")[2]) if "e" not in tag else 1
        return self._("{minutes} min").format(minutes=self.number(v, decimals))


@cache
def language(code: str | None = "en") -> Language:
    """The :class:`Language` for a code of :data:`LANGUAGES` (``None`` = English)."""
    return Language(code or "en")


# --------------------------------------------------------------------------------------
# Vocabulary: the names people read for the tool's own identifiers
# --------------------------------------------------------------------------------------


def N_(message: str) -> str:
    """Mark a message id for extraction; translated later with ``L._``."""
    return message


#: care groups (origins columns) -> what people call them
GROUP_LABELS = {
    "population": N_("Everyone"),
    "children_under5": N_("Children under 5"),
    "children_5_14": N_("Children 5-14"),
    "older_60plus": N_("People 60+"),
    "older_65plus": N_("People 65+"),
    "older_80plus": N_("People 80+"),
    "women_15plus": N_("Women 15+"),
    "women_caregivers": N_("Women caregivers"),
    "female_headed_households": N_("Female-headed households"),
    "people_with_disabilities": N_("People with disabilities"),
    "poverty": N_("People in poverty"),
}

#: the preset labels of the default services (``services.<s>.label``), translated when the
#: config keeps them; a label the user wrote is shown as written
SERVICE_LABELS = {
    "Daycare": N_("Daycare"),
    "Health": N_("Health"),
    "Laundromat": N_("Laundromat"),
    "Community kitchen": N_("Community kitchen"),
    "Disability care": N_("Disability care"),
    "Disability care (SDIS)": N_("Disability care (SDIS)"),
}

#: candidate ``category`` values -> a building type people recognise
CATEGORY_LABELS = {
    "community_centre": N_("community centre"),
    "social_centre": N_("social centre"),
    "library": N_("library"),
    "townhall": N_("town hall"),
    "government_office": N_("government office"),
    "public_building": N_("public building"),
    "health_centre": N_("health centre"),
    "clinic": N_("clinic"),
    "school": N_("school"),
    "kindergarten": N_("kindergarten"),
    "childcare": N_("childcare centre"),
    "marketplace": N_("market"),
    "park": N_("park"),
    "h3_cell": N_("grid cell"),
    "parcel": N_("parcel"),
}

#: candidate score columns -> their names (``{service}`` is the service's label)
COMPONENT_LABELS = {
    "population_covered": N_("People within reach"),
    "transit_population_covered": N_("People within reach by walk + transit"),
    "demand_covered": N_("Care need within reach"),
    "gap_closed": N_("People brought within reach of a missing service"),
    "gap_closed_": N_("People brought within reach of {service}"),
    "hours_returned_week": N_("Caregiver hours returned a week"),
    "hours_returned_": N_("Caregiver hours returned a week: {service}"),
    "colocated_services": N_("Existing services nearby"),
    "colocated_": N_("Existing {service} nearby"),
    "score": N_("Score (0-1)"),
    "marginal_gain": N_("Added by this site"),
    "cumulative_share": N_("Share of the need covered so far"),
}


def group_label(group: str, L: Language) -> str:
    msg = GROUP_LABELS.get(group)
    return L._(msg) if msg else group.replace("_", " ").capitalize()


def label_text(label: str, L: Language) -> str:
    """A service label from the config, translated when it is a preset label."""
    msg = SERVICE_LABELS.get(label)
    return L._(msg) if msg else label


def category_label(category: Any, L: Language) -> str:
    if not isinstance(category, str) or not category:
        return ""
    msg = CATEGORY_LABELS.get(category)
    return L._(msg) if msg else category.replace("_", " ")


def component_label(column: str, L: Language, service_label=None) -> str | None:
    """The name of a candidate score column, or None for columns people need not see."""
    if column in COMPONENT_LABELS:
        return L._(COMPONENT_LABELS[column])
    for prefix in ("gap_closed_", "hours_returned_", "colocated_"):
        if column.startswith(prefix):
            svc = column[len(prefix):]
            name = service_label(svc) if service_label else svc.replace("_", " ")
            return L._(COMPONENT_LABELS[prefix]).format(service=lower_first(name))
    return None


#: walking profile names of the default config (``walk.profiles``)
PROFILE_LABELS = {"stroller": N_("stroller"), "older": N_("older adult"), "older_adult": N_("older adult"),
                  "adult": N_("adult"), "wheelchair": N_("wheelchair")}


def profile_label(name: str, L: Language) -> str:
    msg = PROFILE_LABELS.get(name)
    return L._(msg) if msg else name.replace("_", " ")


def lower_first(text: str) -> str:
    """A label inside a sentence: ``Daycare`` -> ``daycare``; acronyms (``SDIS``) and words
    after the first keep their case."""
    if len(text) > 1 and text[1].isupper():
        return text
    return text[:1].lower() + text[1:]
