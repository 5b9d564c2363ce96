"""`archcalc rf` on a network too deep to count its paths exactly in reasonable time: the field
itself (exact), and the path counts refused by name, in well under a second of work — not a
minute of big-integer arithmetic and then an overflow."""

from __future__ import annotations

import json
import time

from click.testing import CliRunner

from archcalc.cli import cli

DEEP = "name chain\ninput 16x8x8\n" + "conv3-16, relu\n" * 1000  # RF 2001: counts up to 3^1000


def test_the_field_and_why_no_paths(tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = tmp_path / "deep.arch"
    spec.write_text(DEEP)
    start = time.process_time()
    result = CliRunner().invoke(cli, ["rf", str(spec)])
    assert time.process_time() - start < 30  # was about a minute for 10,000 layers, then an OverflowError
    assert result.exit_code == 0, result.output
    assert "h: RF 2001, jump 1, start -1000, center 0" in result.output
    assert "paths not counted: the exact path counts to layer 2000 (relu) are too costly" in result.output
    data = json.loads(CliRunner().invoke(cli, ["rf", str(spec), "--format", "json"]).output)
    assert data["rf"]["size"] == [2001, 2001] and data["paths"] is None
    assert "200,000,000 bit-positions" in data["paths_not_counted"]
    plot = CliRunner().invoke(cli, ["rf", str(spec), "-o", str(tmp_path / "p.svg")])
    assert plot.exit_code == 2 and "no plot: the exact path counts" in plot.output


def test_a_shallower_chain_is_still_counted_exactly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = tmp_path / "chain.arch"
    spec.write_text("name chain\ninput 16x8x8\n" + "conv3-16, relu\n" * 300)
    data = json.loads(CliRunner().invoke(cli, ["rf", str(spec), "--format", "json"]).output)
    counts = data["paths"][0]["counts"]
    assert len(counts) == 601 and sum(counts) == 3**300  # every tap of 300 3-wide convs is one path
    assert counts[300] == max(counts)
