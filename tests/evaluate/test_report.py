

def test_replace_doc_section_creates_then_replaces_only_its_block(tmp_path):
    from noisead.evaluate.report import replace_doc_section

    doc = tmp_path / "BENCH.md"
    doc.write_text("# Bench\n\nhand-written\n<!-- other:begin -->\nkeep\n<!-- other:end -->\n")
    replace_doc_section(doc, "speed", "first")
    replace_doc_section(doc, "speed", "second\n")
    text = doc.read_text()
    assert text.count("<!-- speed:begin -->") == 1 and "first" not in text
    assert "<!-- speed:begin -->\nsecond\n<!-- speed:end -->" in text
    assert "hand-written" in text and "<!-- other:begin -->\nkeep\n<!-- other:end -->" in text
