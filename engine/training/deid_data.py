"""Synthetic, seeded de-identification data: surrogate PHI in note templates and in MTSamples reports.

Two sources, both regenerable from a seed (nothing here is committed but the code and the templates):

- note-like templates (``deid_templates.txt``, written for this project in the style of nursing and discharge
  notes) whose slots are filled with Faker surrogates (names of several locales, dates in many formats, phones,
  record numbers, addresses, hospitals, companies) and with non-PHI traps (eponyms such as "Foley catheter",
  names that are also words such as "Hope to wean");
- the shared MTSamples reports (``../shared/data/mtsamples``; read at build time, never copied): their
  placeholders ("Dr. X", "Mr. ABC", "XYZ Hospital"), dates and some ages become surrogate PHI, and template lines
  (headers, signatures, contacts) are inserted.

Every example is ``{"id", "text", "spans": [[start, end, label], ...], "source"}``. The split is by document:
MTSamples files by a hash of their name, templates by template line (every fifth template only in dev), so dev
measures text the tagger has not seen.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator
from pathlib import Path

from faker import Faker

from engine.deid.lexicon import load_lexicon
from engine.settings import RULES_DIR
from engine.templates import fill_slots

TEMPLATES = Path(__file__).with_name("deid_templates.txt")
_SLOT = re.compile(r"\{([A-Z_]+)\}")
_LOCALES = ("en_US", "en_US", "en_US", "en_GB", "es_MX", "it_IT", "de_DE", "fr_FR", "pl_PL", "pt_BR", "en_IE")
WORD_NAMES = ("Hope", "Will", "Faith", "Grace", "Joy", "June", "April", "May", "Rose", "Bill", "Pat", "Ray", "Art",
              "Mark", "Frank", "Jack", "Page", "Dawn", "Summer", "Iris", "Ruby", "Pearl", "Violet", "Lily", "Hazel",
              "Olive", "Amber", "Penny", "Chase", "Cliff", "Dale", "Glen", "Wade", "Lane", "Miles", "Sky", "Young",
              "Brown", "Green", "White", "Rich", "Patience", "Constance", "Sunny", "Carol", "Bud", "Gene", "Sue")
EPONYMS = ("Foley catheter", "Foley", "foley", "Parkinson's disease", "Parkinson disease", "Crohn's disease",
           "Babinski", "Swan-Ganz", "Jackson-Pratt drain", "JP drain", "Hodgkin lymphoma", "Graves disease",
           "Alzheimer's dementia", "Homans sign", "Murphy's sign", "Bell's palsy", "Cushing syndrome",
           "Barrett's esophagus", "Wilson disease", "Guillain-Barre syndrome", "Doppler", "Holter monitor",
           "Dobhoff", "PleurX catheter", "Hickman line", "Coumadin", "Hoyer lift", "Glasgow coma scale 15",
           "Apgars 8 and 9", "Trendelenburg", "Kussmaul breathing", "Raynaud's", "Kaposi sarcoma", "Lyme disease",
           "Tegaderm", "Pyxis", "Ensure", "Sjogren syndrome", "Hashimoto thyroiditis", "Whipple procedure")
_ORG_TAILS = ("Hospital", "Medical Center", "General Hospital", "Memorial Hospital", "Community Hospital",
              "Regional Medical Center", "Nursing Home", "Rehabilitation Center", "Rehab", "Health Center", "Clinic",
              "Hospice", "Assisted Living", "Nursing and Rehabilitation Center", "Family Practice", "Cardiology "
              "Associates", "Cancer Center", "Infirmary", "Manor", "Healthcare")
_SHORT_TAILS = ("General", "Memorial", "Regional", "Medical", "Deaconess", "Mercy", "Presbyterian", "Baptist")
_TRADES = ("Freight", "Logistics", "Foods", "Motors", "Pharmacy", "Home Health", "Fire Rescue", "Ambulance",
           "Counseling", "Transit", "Bank", "Insurance", "Realty", "Builders", "Electric", "Dental")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


class Surrogates:
    """Draws surrogate PHI strings; one instance per seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.fakers = [Faker(loc) for loc in _LOCALES]
        for i, fk in enumerate(self.fakers):
            fk.seed_instance(seed * 31 + i)
        lex = load_lexicon(RULES_DIR)
        self.census_first = list(lex.first_names)[:4000]
        self.census_last = list(lex.last_names)[:30000]
        rows = (RULES_DIR / "deid_cities.txt").read_text(encoding="utf-8").splitlines()
        self.cities = [r.title() for r in rows[:4000] if r.replace(" ", "").isalpha()]

    def faker(self) -> Faker:
        """One of the locale fakers, at random."""
        return self.rng.choice(self.fakers)

    def first(self) -> str:
        if self.rng.random() < 0.3:
            return self.rng.choice(self.census_first).title()
        return self.faker().first_name()

    def last(self) -> str:
        r = self.rng.random()
        if r < 0.05:  # hyphenated ("Abernathy-Cole") and apostrophe ("O'Rourke") surnames, round 7
            return f"{self.rng.choice(self.census_last).title()}-{self.faker().last_name()}"
        if r < 0.08:
            return f"{self.rng.choice(('O', 'D'))}'{self.rng.choice(self.census_last).title()}"
        if r < 0.4:
            return self.rng.choice(self.census_last).title()
        return self.faker().last_name()

    def company(self) -> str:
        """An employer or agency: Faker's firm names, or a bare name or place with a trade word (round 7)."""
        r = self.rng.random()
        if r < 0.6:
            return self.fakers[0].company()
        head = self.last() if r < 0.8 else self.rng.choice(self.cities)
        return head if r < 0.7 else f"{head} {self.rng.choice(_TRADES)}"

    def date_parts(self) -> tuple[int, int, int]:
        return self.rng.randint(1, 12), self.rng.randint(1, 28), self.rng.choice((self.rng.randint(1930, 2024),
                                                                                  self.rng.randint(2080, 2199)))

    def md(self) -> str:
        m, d, _ = self.date_parts()
        fmt = self.rng.random()
        return f"{m}/{d}" if fmt < 0.7 else f"{m:02d}/{d:02d}" if fmt < 0.9 else f"{m}-{d}"

    def mdy(self) -> str:
        m, d, y = self.date_parts()
        return self.rng.choice((f"{m:02d}/{d:02d}/{y}", f"{m}/{d}/{y % 100:02d}", f"{m}/{d}/{y}",
                                f"{y}-{m:02d}-{d:02d}", f"{m:02d}-{d:02d}-{y}", f"{m}.{d}.{y}"))

    def textdate(self) -> str:
        m, d, y = self.date_parts()
        mon = _MONTHS[m - 1]
        return self.rng.choice((f"{mon} {d}, {y}", f"{mon[:3]} {d}", f"{d} {mon} {y}", f"{mon} {y}",
                                f"{mon} {d}th", f"{mon[:3]}. {d}, {y}", f"{mon} of {y}"))

    def phone(self) -> str:
        a, b, c = self.rng.randint(201, 989), self.rng.randint(200, 999), self.rng.randint(0, 9999)
        return self.rng.choice((f"({a}) {b}-{c:04d}", f"{a}-{b}-{c:04d}", f"{a}.{b}.{c:04d}", f"{a} {b} {c:04d}",
                                f"{b}-{c:04d}", f"{a}{b}{c:04d}", f"1-{a}-{b}-{c:04d}"))

    def hospital(self, short: bool = False) -> str:
        r = self.rng.random()
        head = (self.last() if r < 0.4 else self.rng.choice(self.cities) if r < 0.7 else
                f"St. {self.first()}'s" if r < 0.8 else self.rng.choice(("Mercy", "Riverside", "Lakeside",
                                                                          "Good Samaritan", "Sacred Heart",
                                                                          "Hillcrest", "Maple Grove", "Oakwood",
                                                                          "Pine Ridge", "Beth Israel")))
        tail = self.rng.choice(_SHORT_TAILS) if short else self.rng.choice(_ORG_TAILS)
        return head if short and self.rng.random() < 0.4 else f"{head} {tail}"

    def fill(self, slot: str) -> tuple[str, str | None]:
        """The surrogate string for a template slot and its PHI label (None for non-PHI slots)."""
        r = self.rng
        if slot == "FULL":
            first, last = self.first(), self.last()
            style = r.random()
            text = (f"{first} {last}" if style < 0.7 else f"{first} {r.choice('ABCDEFGHJKLMNPRSTW')}. {last}"
                    if style < 0.85 else f"{first[0]}. {last}")
            return text, "NAME"
        simple = {
            "FIRST": lambda: (self.first(), "NAME"), "LAST": lambda: (self.last(), "NAME"),
            "LF": lambda: (f"{self.last()}, {self.first()}".upper() if r.random() < 0.5
                           else f"{self.last()}, {self.first()}", "NAME"),
            "INIT_LAST": lambda: (f"{self.first()[0]}. {self.last()}", "NAME"),
            "WORDNAME": lambda: (r.choice(WORD_NAMES), "NAME"),
            "MD": lambda: (self.md(), "DATE"), "MDY": lambda: (self.mdy(), "DATE"),
            "TEXTDATE": lambda: (self.textdate(), "DATE"),
            "DATE": lambda: (r.choice((self.md, self.mdy, self.textdate))(), "DATE"),
            "YEAR": lambda: (str(r.choice((r.randint(1940, 2024), r.randint(2080, 2190)))), "DATE"),
            "AGE": lambda: (str(r.randint(90, 106)), "AGE"), "YOUNG": lambda: (str(r.randint(18, 89)), None),
            "PHONE": lambda: (self.phone(), "PHONE"),
            "EXT": lambda: (r.choice((f"{r.randint(1, 9)}-{r.randint(0, 9999):04d}", str(r.randint(1000, 99999)))),
                            "PHONE"),
            "MRN": lambda: (r.choice((str(r.randint(10**5, 10**9)), f"{r.choice('ABCMZ')}{r.randint(10**6, 10**8)}",
                                      f"{r.randint(100, 999)}-{r.randint(10, 99)}-{r.randint(10, 99)}")), "ID"),
            "ACCT": lambda: (r.choice((str(r.randint(10**7, 10**12)), self.faker().bothify("??#######").upper())),
                             "ID"),
            "SSN": lambda: (self.fakers[0].ssn(), "ID"),
            "EMAIL": lambda: (self.faker().email(), "EMAIL"),
            "URL": lambda: (r.choice((self.fakers[0].url(), f"www.{self.fakers[0].domain_name()}")), "URL"),
            "HOSP": lambda: (self.hospital(), "HOSPITAL"), "HOSP_SHORT": lambda: (self.hospital(True), "HOSPITAL"),
            "CITY": lambda: (r.choice(self.cities), "LOCATION"),
            "STREET": lambda: (self.fakers[0].street_address(), "LOCATION"),
            "ZIP": lambda: (self.fakers[0].zipcode(), "LOCATION"),
            "STATE": lambda: (r.choice((self.fakers[0].state_abbr(), self.fakers[0].state())), None),
            "COMPANY": lambda: (self.company(), "HOSPITAL"),
            "EPONYM": lambda: (r.choice(EPONYMS), None),
        }
        return simple[slot]()


def _case(text: str, label: str | None, rng: random.Random) -> str:
    if label == "NAME":
        roll = rng.random()
        return text.lower() if roll < 0.1 else safe_upper(text) if roll < 0.17 else text
    return text


def safe_upper(text: str) -> str:
    """Upper case, unless that changes the length ("ß" -> "SS"), which would move every later offset."""
    upper = text.upper()
    return upper if len(upper) == len(text) else text


def render(template: str, sur: Surrogates) -> tuple[str, list[list[object]]]:
    """Fill one template line; returns the text and its PHI spans."""
    def fill(name: str) -> tuple[str, str | None]:
        value, label = sur.fill(name)
        return _case(value, label, sur.rng), label

    text, spans = fill_slots(template, _SLOT, fill)
    return text, [[start, end, label] for start, end, label in spans if label is not None]


def load_templates(path: Path = TEMPLATES) -> list[str]:
    """The template lines (comments dropped)."""
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]


def split_templates(templates: list[str]) -> tuple[list[str], list[str]]:
    """Every fifth template goes to dev only."""
    return ([t for i, t in enumerate(templates) if i % 5 != 4], [t for i, t in enumerate(templates) if i % 5 == 4])


def template_note(templates: list[str], sur: Surrogates, note_id: str) -> dict[str, object]:
    """A note of 3-12 template lines, sometimes upper case, lines joined by newlines or spaces."""
    rng = sur.rng
    parts: list[str] = []
    spans: list[list[object]] = []
    length = 0
    for _ in range(rng.randint(3, 12)):
        text, line_spans = render(rng.choice(templates), sur)
        sep = "" if not parts else rng.choice(("\n", "\n", " ", "\n\n"))
        length += len(sep)
        spans += [[s + length, e + length, lab] for s, e, lab in line_spans]
        parts.append(sep + text)
        length += len(text)
    text = "".join(parts)
    if rng.random() < 0.15:
        text = safe_upper(text)
    return {"id": note_id, "text": text, "spans": spans, "source": "template"}


def doc_split(name: str, dev_fraction: float = 0.15) -> str:
    """``train`` or ``dev`` for a document name (stable hash, so the split never moves)."""
    value = int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "dev" if value < dev_fraction else "train"


def iter_mtsamples(data_dir: Path) -> Iterator[tuple[str, str]]:
    """``(file name, report body)`` of the shared MTSamples reports, header lines dropped."""
    folder = data_dir / "mtsamples"
    for path in sorted(folder.glob("*.txt")):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        body = [ln for ln in lines if not ln.startswith(("Medical Specialty:", "Sample Name:", "Description:",
                                                         "(Medical Transcription", "Keywords:"))]
        yield path.name, "\n".join(body).strip()
