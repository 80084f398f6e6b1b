"""A BERT word-piece tokenizer on the ``tokenizers`` library, called like ``transformers``' fast tokenizers."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from engine.encoder.loading import _read_json
from engine.encoder.model import BERT_MODEL_TYPES

_SPECIAL_NAMES = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
_BERT_SPECIALS = {
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}
_TOKENIZER_CLASSES = {None, "BertTokenizer", "BertTokenizerFast"}


class BatchEncoding(dict):
    """Tokenizer output: ``input_ids``, ``token_type_ids``, ``attention_mask`` (and ``offset_mapping`` when
    asked), as lists or, with ``return_tensors="pt"``, tensors; ``.to(device)`` moves the tensors."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc

    def to(self, device: str | torch.device) -> BatchEncoding:
        """Move every tensor to ``device`` (in place); returns ``self``."""
        for key, value in self.items():
            if isinstance(value, torch.Tensor):
                self[key] = value.to(device)
        return self


class _SpecialTokenId:
    """A read-only ``<token>_id`` attribute: the vocabulary id of the tokenizer's special token ``<token>``
    (``None`` when it has none), as ``transformers`` names them (``pad_token_id`` is the id of ``pad_token``)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.token = name.removesuffix("_id")

    def __get__(self, tokenizer: FastTokenizer | None, owner: type | None = None) -> int | None:
        return None if tokenizer is None else tokenizer._id(getattr(tokenizer, self.token))


class FastTokenizer:
    """A BERT word-piece tokenizer on the ``tokenizers`` library, called like ``transformers``' fast tokenizers
    for what the engine uses (single texts or lists, special tokens, padding, truncation, offsets, tensors).

    Attributes:
        backend_tokenizer: The ``tokenizers.Tokenizer``.
        model_max_length: Length ``truncation=True`` cuts to when no ``max_length`` is given.
        name_or_path: The folder it was loaded from.
    """

    def __init__(self, backend: Any, special_tokens: Mapping[str, str], model_max_length: int, name_or_path: str):
        self.backend_tokenizer = backend
        self.model_max_length = int(model_max_length)
        self.name_or_path = name_or_path
        self.padding_side = "right"
        for name in _SPECIAL_NAMES:
            setattr(self, name, special_tokens.get(name))
        self._lock = threading.Lock()
        # A tokenizer.json may carry padding/truncation settings (all-MiniLM-L6-v2's pads and cuts to 128):
        # transformers resets them on every call, here they are off unless a call asks for them.
        backend.no_padding()
        backend.no_truncation()
        self._truncation: int | None = None

    def _id(self, token: str | None) -> int | None:
        return None if token is None else self.backend_tokenizer.token_to_id(token)

    unk_token_id = _SpecialTokenId()
    sep_token_id = _SpecialTokenId()
    pad_token_id = _SpecialTokenId()
    cls_token_id = _SpecialTokenId()
    mask_token_id = _SpecialTokenId()

    @property
    def vocab_size(self) -> int:
        """Vocabulary size without added tokens."""
        return self.backend_tokenizer.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        return self.backend_tokenizer.get_vocab_size(with_added_tokens=True)

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int | None] | None:
        """Id of a token (or of each token); unknown tokens get the unknown token's id."""
        if isinstance(tokens, str):
            found = self._id(tokens)
            return self.unk_token_id if found is None else found
        return [self.convert_tokens_to_ids(t) for t in tokens]  # type: ignore[misc]

    def convert_ids_to_tokens(self, ids: int | Sequence[int]) -> str | list[str | None] | None:
        """Token of an id (or of each id)."""
        if isinstance(ids, int):
            return self.backend_tokenizer.id_to_token(ids)
        return [self.backend_tokenizer.id_to_token(int(i)) for i in ids]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """Text of token ids (word pieces joined)."""
        return self.backend_tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def tokenize(self, text: str) -> list[str]:
        """Word pieces of ``text`` (no special tokens)."""
        return self.backend_tokenizer.encode(text, add_special_tokens=False).tokens

    def __call__(
        self,
        text: str | Sequence[str],
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        return_tensors: str | None = None,
        return_offsets_mapping: bool = False,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        verbose: bool = True,
    ) -> BatchEncoding:
        """Tokenise one text or a list of texts.

        Args:
            text: A string, or a list of strings (a batch).
            add_special_tokens: Add ``[CLS]`` ... ``[SEP]``.
            padding: ``True``/``"longest"`` pads a batch to its longest row; ``"max_length"`` to ``max_length``.
            truncation: ``True``/``"longest_first"`` cuts rows to ``max_length`` (or ``model_max_length``),
                special tokens included.
            max_length: See ``padding`` and ``truncation``.
            return_tensors: ``"pt"`` for ``torch`` tensors, ``None`` for lists.
            return_offsets_mapping: Also return each token's ``(start, end)`` character offsets.
            return_token_type_ids: Include ``token_type_ids`` (default yes).
            return_attention_mask: Include ``attention_mask`` (default yes).
            verbose: Accepted for compatibility; nothing is logged.

        Raises:
            ValueError: Tensors asked for rows of unequal length without padding, or unknown options.
        """
        del verbose
        if return_tensors not in (None, "pt"):
            raise ValueError(f"return_tensors={return_tensors!r} is not supported (use 'pt' or None)")
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        cut: int | None = None
        if truncation not in (None, False, "do_not_truncate"):
            if truncation not in (True, "longest_first", "only_first"):
                raise ValueError(f"truncation={truncation!r} is not supported")
            cut = int(max_length if max_length is not None else self.model_max_length)
        with self._lock:
            if cut != self._truncation:
                if cut is None:
                    self.backend_tokenizer.no_truncation()
                else:
                    self.backend_tokenizer.enable_truncation(cut)
                self._truncation = cut
            encodings = (
                [self.backend_tokenizer.encode(texts[0], add_special_tokens=add_special_tokens)]
                if len(texts) == 1
                else self.backend_tokenizer.encode_batch(texts, add_special_tokens=add_special_tokens)
            )
        rows_ids = [e.ids for e in encodings]
        rows_types = [e.type_ids for e in encodings]
        rows_offsets = [e.offsets for e in encodings]
        rows_mask = [[1] * len(r) for r in rows_ids]
        width: int | None = None
        if padding in (True, "longest"):
            width = max((len(r) for r in rows_ids), default=0)
        elif padding == "max_length":
            width = int(max_length if max_length is not None else self.model_max_length)
        elif padding not in (False, None, "do_not_pad"):
            raise ValueError(f"padding={padding!r} is not supported")
        if width is not None:
            if self.pad_token_id is None:
                raise ValueError(f"{self.name_or_path}: no pad token to pad with")
            _pad_rows(width, self.pad_token_id, rows_ids, rows_types, rows_mask, rows_offsets)
        out = BatchEncoding(input_ids=rows_ids)
        if return_token_type_ids is not False:
            out["token_type_ids"] = rows_types
        if return_attention_mask is not False:
            out["attention_mask"] = rows_mask
        if return_offsets_mapping:
            out["offset_mapping"] = rows_offsets
        return _finish(out, return_tensors, single)


def _pad_rows(width: int, pad_id: int, ids: list, types: list, mask: list, offsets: list) -> None:
    """Pad every row (in place) to ``width``: pad ids, type 0, mask 0, offsets ``(0, 0)``."""
    for row in range(len(ids)):
        extra = width - len(ids[row])
        if extra > 0:
            ids[row] = ids[row] + [pad_id] * extra
            types[row] = types[row] + [0] * extra
            mask[row] = mask[row] + [0] * extra
            offsets[row] = offsets[row] + [(0, 0)] * extra


def _finish(out: BatchEncoding, return_tensors: str | None, single: bool) -> BatchEncoding:
    """Rows as tensors (``return_tensors="pt"``), or a single text's rows unwrapped."""
    if return_tensors == "pt":
        lengths = {len(r) for r in out["input_ids"]}
        if len(lengths) > 1:
            raise ValueError("rows of unequal length: pass padding=True to get tensors")
        for key, rows in list(out.items()):
            out[key] = torch.tensor(rows, dtype=torch.long)
            if key == "offset_mapping":
                out[key] = out[key].reshape(len(rows), -1, 2)
    elif single:
        for key, rows in list(out.items()):
            out[key] = rows[0]
    return out


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return None if value is None else str(value)


def supports_tokenizer(folder: Path) -> bool:
    """Whether ``folder``'s tokenizer can be run here: a BERT-family word-piece tokenizer with a
    ``tokenizer.json`` or ``vocab.txt``."""
    folder = Path(folder)
    config = _read_json(folder / "config.json")
    tok_config = _read_json(folder / "tokenizer_config.json")
    return (
        config.get("model_type") in BERT_MODEL_TYPES
        and tok_config.get("tokenizer_class") in _TOKENIZER_CLASSES
        and ((folder / "tokenizer.json").is_file() or (folder / "vocab.txt").is_file())
    )


def load_tokenizer(folder: Path) -> FastTokenizer | None:
    """The folder's word-piece tokenizer, built as ``transformers`` 5 builds ``BertTokenizer``: the vocabulary
    and post-processor of ``tokenizer.json`` (else ``vocab.txt``), a ``BertNormalizer`` set from
    ``tokenizer_config.json`` (``do_lower_case``, ``strip_accents``, ``tokenize_chinese_chars``), the special
    tokens of ``special_tokens_map.json``. ``None`` when not supported here (see :func:`supports_tokenizer`)."""
    folder = Path(folder)
    if not supports_tokenizer(folder):
        return None
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    tok_config = _read_json(folder / "tokenizer_config.json")
    special_map = _read_json(folder / "special_tokens_map.json")
    specials = {
        name: _token_text(special_map.get(name, tok_config.get(name, _BERT_SPECIALS[name]))) or _BERT_SPECIALS[name]
        for name in _SPECIAL_NAMES
    }
    if (folder / "tokenizer.json").is_file():
        backend = Tokenizer.from_file(str(folder / "tokenizer.json"))
        if backend.model.__class__.__name__ != "WordPiece":
            return None
    else:
        vocab: dict[str, int] = {}
        for index, line in enumerate((folder / "vocab.txt").read_text(encoding="utf-8").split("\n")):
            if line or index == 0:
                vocab[line] = index
        backend = Tokenizer(WordPiece(vocab, unk_token=specials["unk_token"]))
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        backend.decoder = decoders.WordPiece(prefix="##")
        backend.add_special_tokens([AddedToken(specials[n], special=True, normalized=False) for n in _SPECIAL_NAMES])
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=bool(tok_config.get("tokenize_chinese_chars", True)),
        strip_accents=tok_config.get("strip_accents"),
        lowercase=bool(tok_config.get("do_lower_case", True)),
    )
    if backend.post_processor is None:
        cls, sep = specials["cls_token"], specials["sep_token"]
        backend.post_processor = processors.TemplateProcessing(
            single=f"{cls}:0 $A:0 {sep}:0",
            pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
            special_tokens=[(cls, backend.token_to_id(cls)), (sep, backend.token_to_id(sep))],
        )
    max_len = tok_config.get("model_max_length")
    if not isinstance(max_len, int | float) or max_len > 1_000_000:
        max_len = _read_json(folder / "config.json").get("max_position_embeddings", 512)
    return FastTokenizer(backend, specials, int(max_len), str(folder))

