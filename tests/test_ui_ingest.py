"""ui.ingest: note extraction from .txt/.docx/.pdf and batch readers, with clear refusals of bad input."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from ui.ingest import MAX_NOTE_BYTES, IngestError, extract_note, read_batch, read_note, validate_text

NOTE = "Chief complaint: chest pain.\nPatient denies fever. Started on aspirin 81 mg."


def make_pdf(text: str) -> bytes:
    """A minimal one-page PDF drawing ``text`` in Helvetica (built by hand so the offsets table is right)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def make_docx(paragraphs: list[str]) -> bytes:
    import docx

    document = docx.Document()
    for p in paragraphs:
        document.add_paragraph(p)
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def test_txt_kept_exactly_including_whitespace():
    raw = "  " + NOTE + "\n\n"
    assert extract_note("n.txt", raw.encode("utf-8")) == raw
    assert extract_note("n.TXT", b"\xef\xbb\xbf" + NOTE.encode()) == NOTE  # BOM dropped


def test_docx_and_pdf_text():
    assert extract_note("n.docx", make_docx(["Chief complaint: chest pain.", "No fever."])) == (
        "Chief complaint: chest pain.\nNo fever."
    )
    assert "chest pain" in extract_note("n.pdf", make_pdf("Chief complaint: chest pain."))


@pytest.mark.parametrize(
    ("name", "data", "needle"),
    [
        ("empty.txt", b"   \n\t ", "empty"),
        ("big.txt", b"a" * (10 * 1024 * 1024), "limit for one note"),
        ("bad.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog garbage", "corrupt"),
        ("bad2.pdf", b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "not a PDF"),
        ("blob.txt", bytes(range(256)) * 4, "binary"),
        ("bad.docx", b"PK\x03\x04 not really a zip", "could not be read"),
        ("image.png", b"\x89PNG", "unsupported"),
    ],
)
def test_bad_uploads_get_a_clear_message(name, data, needle):
    with pytest.raises(IngestError) as err:
        extract_note(name, data)
    assert needle in str(err.value)
    assert name in str(err.value) or needle == "empty"


def test_pdf_without_text_is_refused():
    with pytest.raises(IngestError, match="no extractable text"):
        extract_note("scan.pdf", make_pdf(""))


def test_validate_text_limits():
    assert validate_text(NOTE) is NOTE
    with pytest.raises(IngestError, match="empty"):
        validate_text("")
    with pytest.raises(IngestError, match="limit"):
        validate_text("x" * (MAX_NOTE_BYTES))


def test_batch_zip_csv_jsonl():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("notes/a.txt", NOTE)
        zf.writestr("notes/b.txt", "Denies cough.")
        zf.writestr("notes/readme.md", "x")
        zf.writestr("notes/empty.txt", " ")
        zf.writestr("__MACOSX/._a.txt", "junk")
    batch = read_batch("set.zip", buf.getvalue())
    assert batch.notes == [("notes/a", NOTE), ("notes/b", "Denies cough.")]
    assert len(batch.problems) == 2 and any("readme.md" in p for p in batch.problems)

    csv_bytes = b'id,text\nn1,"line one\nline two"\nn1,second\n,third\n'
    batch = read_batch("set.csv", csv_bytes)
    assert batch.notes == [("n1", "line one\nline two"), ("n1#2", "second"), ("row-3", "third")]

    lines = [json.dumps({"id": "x", "text": NOTE}), "{not json", json.dumps({"id": "y"}), "",
             json.dumps({"text": "No id here."})]
    batch = read_batch("set.jsonl", "\n".join(lines).encode())
    assert batch.notes == [("x", NOTE), ("line-5", "No id here.")]
    assert batch.problems == ["set.jsonl line 2: invalid JSON",
                              "set.jsonl line 3: needs an object with a string 'text' field"]


@pytest.mark.parametrize(
    ("name", "data", "needle"),
    [
        ("a.zip", b"PK\x03\x04garbage", "not a readable .zip"),
        ("a.csv", b"foo,bar\n1,2\n", "'text' column"),
        ("a.jsonl", b"{bad\n", "no usable notes"),
        ("a.xlsx", b"x", "unsupported"),
        ("a.jsonl", b"\x00\x01\x02", "binary"),
    ],
)
def test_bad_batches(name, data, needle):
    with pytest.raises(IngestError, match=needle):
        read_batch(name, data)


def test_find_occurrence():
    from ui.ingest import find_occurrence

    text = "pain in chest; chest pain; pain"
    assert find_occurrence(text, "pain") == 0
    assert find_occurrence(text, "pain", 2) == text.index("pain", 1)
    assert find_occurrence(text, "pain", 3) == len(text) - 4
    assert find_occurrence(text, "pain", 4) == -1
    assert find_occurrence(text, "  ") == -1 and find_occurrence(text, "fever") == -1


def test_a_latin1_or_windows1252_note_is_decoded_with_a_notice():
    """Issue #17 item 7: such a file was refused ("not UTF-8"); it is now read, and the notice names the guess."""
    text, notice = read_note("latin.txt", "Patient refuses café; “crème” at 9.".encode("cp1252"))
    assert text == "Patient refuses café; “crème” at 9."
    assert "latin.txt is not UTF-8" in notice and "Windows-1252" in notice
    text, notice = read_note("old.txt", "fièvre".encode("latin-1") + b"\x81")  # 0x81 is undefined in cp1252
    assert text == "fièvre\x81" and "Latin-1" in notice
    assert read_note("n.txt", NOTE.encode("utf-8")) == (NOTE, "")
