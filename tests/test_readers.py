"""Inputs exported from anywhere (issue 12): each file gives correct output or one clear line and exit 1."""

from __future__ import annotations

import codecs
import json

import pandas as pd
import pytest
from click.testing import CliRunner

from rupture_nlp.cli import main
from rupture_nlp.data import InputError, InputSpec, read_all, read_csv_strict

pytestmark = pytest.mark.code

POSTS = ["I skipped my session and told her I was sick.", "Great session today and my T is lovely."]


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


def predicted(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def one_line_error(result, *phrases):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
    for phrase in phrases:
        assert phrase in result.output, result.output


def test_excel_bom_csv_is_read(small_model_dir, tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(codecs.BOM_UTF8 + "text\r\n".encode() + "\r\n".join(POSTS).encode() + b"\r\n")
    rows = predicted(run("predict", "-m", small_model_dir, path))
    assert [r["row"] for r in rows] == [1, 2]
    assert list(read_csv_strict(path).columns) == ["text"]


def test_huge_field_is_read_and_cut_at_max_chars(small_model_dir, tmp_path):
    path = tmp_path / "big.csv"
    long_post = "I felt dismissed when she checked the clock. " * 4000  # 180 KB, over csv's 128 KB limit
    pd.DataFrame({"text": [POSTS[0], long_post]}).to_csv(path, index=False)
    result = run("predict", "-m", small_model_dir, path)
    assert len(predicted(result)) == 2
    assert "cut 1 post(s) longer than 100000 characters" in result.stderr
    result = run("predict", "-m", small_model_dir, path, "--max-chars", 40)
    assert "cut 2 post(s)" in result.stderr
    batches = read_all(InputSpec(path=str(path), max_chars=100))
    assert batches["text"].str.len().max() == 100 and batches.attrs["truncated"] == 1


def test_unterminated_quote_is_named_by_line(small_model_dir, tmp_path):
    path = tmp_path / "quote.csv"
    path.write_text(f'text\n{POSTS[0]}\n"she said no,\n{POSTS[1]}\nanother post\n', encoding="utf-8")
    one_line_error(run("predict", "-m", small_model_dir, path), "line 3", "never closed")
    with pytest.raises(InputError, match="line 3"):
        read_csv_strict(path)


def test_text_after_closing_quote_is_named(tmp_path):
    path = tmp_path / "junk.csv"
    path.write_text('text,n\n"fine",1\n"she said "no" loudly",2\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 3: text after a closing quote"):
        read_all(InputSpec(path=str(path)))


def test_ragged_rows_are_named_by_line(small_model_dir, tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text(f"id,text\n1,{POSTS[0]}\n2,I told her, and she listened\n", encoding="utf-8")
    one_line_error(run("predict", "-m", small_model_dir, path), "line 3 has 3 fields but the header has 2")
    short = tmp_path / "short.csv"
    short.write_text(f"id,text\n1,{POSTS[0]}\n2\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 3 has 1 fields"):
        read_csv_strict(short)


def test_a_quote_swallowing_lines_is_found(tmp_path):
    path = tmp_path / "swallow.csv"
    path.write_text('id,text\n1,"I said no\n2,fine\n3,"ok"\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"line 4: text after a closing quote.*starts at line 2"):
        read_all(InputSpec(path=str(path)))
    path.write_text('id,text\n1,"I said no\n2,fine\n3,ok",x\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"line 2 has 3 fields.*runs over 3 lines.*quote at line 2"):
        read_all(InputSpec(path=str(path)))


@pytest.mark.parametrize("encoding, text, fix", [
    ("cp1252", "She said \u201cno\u201d \u2013 caf\u00e9", "--encoding cp1252"),
    ("latin-1", "caf\u00e9 and na\u00efve", "--encoding cp1252"),
    ("latin-1", "caf\u00e9 \x81 odd byte", "--encoding latin-1"),
])
def test_other_encodings_are_named_with_the_fix(small_model_dir, tmp_path, encoding, text, fix):
    path = tmp_path / "enc.csv"
    path.write_bytes(f"text\n{POSTS[0]}\n{text}\n".encode(encoding))
    one_line_error(run("predict", "-m", small_model_dir, path), "not UTF-8", "line 3", fix)
    rows = predicted(run("predict", "-m", small_model_dir, path, "--encoding", encoding))
    assert len(rows) == 2
    assert read_all(InputSpec(path=str(path), encoding=encoding))["text"].iloc[1] == text


def test_utf16_is_named_and_read_with_encoding(small_model_dir, tmp_path):
    path = tmp_path / "u16.txt"
    path.write_bytes("\n".join(POSTS).encode("utf-16"))
    one_line_error(run("predict", "-m", small_model_dir, path), "UTF-16", "--encoding utf-16")
    assert len(predicted(run("predict", "-m", small_model_dir, path, "--encoding", "utf-16"))) == 2
    one_line_error(run("predict", "-m", small_model_dir, path, "--encoding", "klingon"), "unknown encoding")


def test_crlf_and_lone_cr_line_endings(small_model_dir, tmp_path):
    for name, eol in (("crlf.csv", "\r\n"), ("crlf.txt", "\r\n"), ("crlf.jsonl", "\r\n")):
        path = tmp_path / name
        body = (eol.join(json.dumps({"text": p}) for p in POSTS) if name.endswith("jsonl")
                else eol.join((["text"] if name.endswith("csv") else []) + POSTS))
        path.write_bytes((body + eol).encode())
        rows = predicted(run("predict", "-m", small_model_dir, path))
        assert len(rows) == 2, name
    multi = tmp_path / "multi.csv"
    multi.write_bytes(b'text\r\n"first line\r\nsecond line of the same post"\r\nanother post\r\n')
    assert read_all(InputSpec(path=str(multi)))["text"].tolist() == ["first line\r\nsecond line of the same post",
                                                                     "another post"]


def test_header_only_file(small_model_dir, tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("post_id,text\r\n", encoding="utf-8")
    one_line_error(run("predict", "-m", small_model_dir, path), "has no posts (a header alone")
    assert read_csv_strict(path).empty


def test_numbers_only_column_names_the_fix(small_model_dir, tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("text,body\n101,hello there\n102,good session\n", encoding="utf-8")
    one_line_error(run("predict", "-m", small_model_dir, path), "holds only numbers", "--text-column")
    assert len(predicted(run("predict", "-m", small_model_dir, path, "--text-column", "body"))) == 2
    jsonl = tmp_path / "ids.jsonl"
    jsonl.write_text('{"text": 1}\n{"text": 2.5}\n', encoding="utf-8")
    one_line_error(run("predict", "-m", small_model_dir, jsonl), "holds only numbers")


def test_jsonl_with_bom_and_trailing_commas(small_model_dir, tmp_path):
    path = tmp_path / "posts.jsonl"
    body = ",\n".join(json.dumps({"id": i, "text": p}) for i, p in enumerate(POSTS)) + ",\n"
    path.write_bytes(codecs.BOM_UTF8 + body.encode())
    rows = predicted(run("predict", "-m", small_model_dir, path, "--id-column", "id"))
    assert [r["id"] for r in rows] == ["0", "1"]
    array = tmp_path / "array.json"
    array.write_text(json.dumps([{"text": p} for p in POSTS]), encoding="utf-8")
    one_line_error(run("predict", "-m", small_model_dir, array), "JSON array", "jq -c")


def test_nul_bytes_are_named_by_line(small_model_dir, tmp_path):
    path = tmp_path / "nul.txt"
    path.write_bytes(f"{POSTS[0]}\n{POSTS[1]}\x00\x00\n".encode())
    one_line_error(run("predict", "-m", small_model_dir, path), "line 2 holds a NUL byte")
    csv_path = tmp_path / "nul.csv"
    csv_path.write_bytes(b"text\nhello there\x00\n")
    with pytest.raises(InputError, match="line 2 holds a NUL byte"):
        read_csv_strict(csv_path)


def test_workbook_given_as_csv_is_named(small_model_dir, tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    one_line_error(run("predict", "-m", small_model_dir, path), "Excel workbook", ".xlsx")


def test_xlsx_is_read(small_model_dir, tmp_path):
    pytest.importorskip("openpyxl")
    path = tmp_path / "export.xlsx"
    pd.DataFrame({"post_id": ["a", "b"], "text": POSTS}).to_excel(path, index=False)
    rows = predicted(run("predict", "-m", small_model_dir, path, "--id-column", "post_id"))
    assert [r["id"] for r in rows] == ["a", "b"]
    assert read_csv_strict(path)["text"].tolist() == POSTS
    fake = tmp_path / "fake.xlsx"
    fake.write_text("text\nhello\n")
    one_line_error(run("predict", "-m", small_model_dir, fake), "not an .xlsx workbook")


def test_xlsx_without_openpyxl_says_what_to_install(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_openpyxl(name, *args, **kwargs):
        if name == "openpyxl":
            raise ImportError("no openpyxl")
        return real_import(name, *args, **kwargs)

    path = tmp_path / "export.xlsx"
    path.write_bytes(b"PK\x03\x04")
    monkeypatch.setattr(builtins, "__import__", no_openpyxl)
    with pytest.raises(InputError, match=r"pip install 'rupture-nlp\[excel\]'"):
        read_all(InputSpec(path=str(path)))


def test_stdin_with_bom_and_cp1252(small_model_dir):
    rows = predicted(run("predict", "-m", small_model_dir, "-", "--input-format", "txt",
                         input=codecs.BOM_UTF8 + "\n".join(POSTS).encode()))
    assert len(rows) == 2
    result = run("predict", "-m", small_model_dir, "-", "--input-format", "txt",
                 input="caf\u00e9 \u201cquoted\u201d post\n".encode("cp1252"))
    one_line_error(result, "not UTF-8", "--encoding cp1252")


def test_triage_reads_bom_and_encoding(small_model_dir, tmp_path):
    path = tmp_path / "threads.csv"
    frame = pd.DataFrame({"thread_id": ["t1", "t1"], "author": ["a", "b"], "position": [0, 1],
                          "text": ["I told my T I was furious \u2013 she apologised", POSTS[1]]})
    path.write_bytes(codecs.BOM_UTF8 + frame.to_csv(index=False).encode())
    result = run("triage", "-m", small_model_dir, path, "--format", "csv", "--explain", 0)
    assert result.exit_code == 0, result.output
    path.write_bytes(frame.to_csv(index=False).encode("cp1252"))
    one_line_error(run("triage", "-m", small_model_dir, path), "--encoding cp1252")
    result = run("triage", "-m", small_model_dir, path, "--encoding", "cp1252", "--explain", 0)
    assert result.exit_code == 0, result.output
