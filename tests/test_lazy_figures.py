"""The conventions and the training step are computed on first read, once, and are the passes'
own figures: the default table report computes neither."""

from __future__ import annotations

from click.testing import CliRunner

import archcalc
from archcalc.cli import cli
from archcalc.passes import conventions, training
from archcalc.passes.analysis import analyze


def test_read_once_and_the_same_figures() -> None:
    a = archcalc.analyze("resnet18")
    assert "conventions" not in vars(a) and "training" not in vars(a)
    assert a.conventions == conventions.count_all(a.graph, a.macs, a.counts)
    assert a.training == training.training(a.graph, a.counts, a.macs, training.TrainingOptions())
    assert a.conventions is a.conventions and a.training is a.training  # computed once


def test_the_table_report_computes_neither(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    calls: list[str] = []
    count_all, step = conventions.count_all, training.training
    monkeypatch.setattr(conventions, "count_all", lambda *a: calls.append("conventions") or count_all(*a))
    monkeypatch.setattr(training, "training", lambda *a: calls.append("training") or step(*a))
    assert CliRunner().invoke(cli, ["report", "resnet18"]).exit_code == 0
    assert calls == []
    assert CliRunner().invoke(cli, ["report", "resnet18", "--format", "json"]).exit_code == 0
    assert sorted(calls) == ["conventions", "training"]


def test_the_notebook_analysis_keeps_what_was_computed() -> None:
    from archcalc.report.notebook import Analysis

    a = analyze(archcalc.load("resnet18"))
    step = a.training
    assert Analysis.of(a).training is step
