"""Reader for the PubMed article/abstract pairs (Cohan et al. 2018 JSON lines format).

Each line holds ``article_id``, ``article_text`` (list of lower-cased, tokenised sentences) and ``abstract_text``
(list of ``<S> .. </S>`` sentences). The engine summarises plain text, so :attr:`PubMedArticle.text` joins the
article's sentences into one string, the way a caller would hand the article to ``summarize``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError, ErrorCode

_TAG = re.compile(r"</?S>")


@dataclass(frozen=True, slots=True)
class PubMedArticle:
    """One article with its reference abstract."""

    id: str
    sentences: tuple[str, ...]
    """The article's sentences as the dataset gives them."""
    abstract: tuple[str, ...]
    """The abstract's sentences, ``<S>`` tags removed."""

    def text(self, joiner: str = "\n") -> str:
        """The article as one note: its sentences joined by ``joiner``."""
        return joiner.join(self.sentences)

    @property
    def reference(self) -> str:
        """The abstract with one sentence per line (the form ROUGE-Lsum expects)."""
        return "\n".join(self.abstract)


def clean_abstract(sentences: list[str]) -> tuple[str, ...]:
    """Strip ``<S>``/``</S>`` tags and blank sentences."""
    out = (_TAG.sub(" ", s).strip() for s in sentences)
    return tuple(" ".join(s.split()) for s in out if s)


def read_pubmed(path: str | Path, limit: int | None = None) -> Iterator[PubMedArticle]:
    """Read articles from a JSON lines file.

    Args:
        path: A ``*.jsonl`` file.
        limit: Stop after this many articles.

    Raises:
        EngineError: ``DATA_NOT_FOUND`` when the file is missing, ``BAD_INPUT`` on a malformed line.
    """
    path = Path(path)
    if not path.is_file():
        raise EngineError(ErrorCode.DATA_NOT_FOUND, f"PubMed file {path} not found")
    count = 0
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                sentences = tuple(" ".join(s.split()) for s in obj["article_text"] if s and s.strip())
                abstract = clean_abstract(obj["abstract_text"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise EngineError(ErrorCode.BAD_INPUT, f"{path}:{lineno}: not a PubMed article ({exc})") from exc
            if not sentences or not abstract:
                continue
            yield PubMedArticle(
                id=str(obj.get("article_id", f"{path.stem}-{lineno}")), sentences=sentences, abstract=abstract
            )
            count += 1
            if limit is not None and count >= limit:
                return


def split_path(data_dir: str | Path, split: str) -> Path:
    """``data_dir/pubmed-summarization/<split>.jsonl`` (``data_dir`` may also be the dataset folder itself)."""
    data_dir = Path(data_dir)
    folder = data_dir if (data_dir / f"{split}.jsonl").is_file() else data_dir / "pubmed-summarization"
    return folder / f"{split}.jsonl"
