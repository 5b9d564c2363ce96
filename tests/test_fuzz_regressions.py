"""The minimal reproducers of what the fuzzer (tests/fuzz/) found, one test each.

Each was a Python traceback, a hang, a leaked Python warning or a message that pointed at the
wrong place; each must now end in one clear message (exit 2) or a correct result.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings

import pytest
from click.testing import CliRunner, Result

from archcalc.cli import cli


def run(args: list[str], spec: str | None = None) -> Result:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = CliRunner().invoke(cli, args, input=spec)
    assert not [w for w in caught if issubclass(w.category, SyntaxWarning)], [str(w.message) for w in caught]
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def error(args: list[str], spec: str | None = None) -> str:
    result = run(args, spec)
    assert result.exit_code == 2, result.output
    return result.output


def test_a_huge_input_size_names_the_limit() -> None:
    # was OverflowError in passes/sharing.py (integer division result too large for a float)
    out = error(["report", "-", "--format", "json"], "input 1x1" + "0" * 300 + "\nconv3-1\n")
    assert out.startswith("<stdin>:1:7: error: a size of the input is more than 2**996")
    assert "2**40 = 1,099,511,627,776" in out


def test_a_huge_kernel_names_the_limit() -> None:
    # was OverflowError in passes/receptive_field.py _back (cannot fit 'int' into an index-sized integer)
    out = error(["rf", "-"], "input 8x32\nconv18446744073709551616-8\n")
    assert out.startswith("<stdin>:2:1: error: argument 'kernel' of 'conv18446744073709551616-8' is "
                          "18,446,744,073,709,551,616: archcalc's limit for one size is 2**40")


def test_a_flatten_past_the_limit_is_refused_where_it_happens() -> None:
    out = error(["report", "-"], "input 3x1000000000000x1000000000000\nflatten\n")
    assert out.startswith("<stdin>:2:1: error: 'flatten' makes an axis of 3,000,000,000,000,000,000,000,000")


def test_a_size_at_the_limit_is_counted_exactly() -> None:
    out = run(["report", "-", "--format", "json"], f"input {2**40}\nrelu\n")
    assert out.exit_code == 0 and '"shape": [\n        1099511627776' in out.output


def test_rf_layer_with_unicode_or_5000_digits() -> None:
    # was ValueError in cli/rf.py _find: '①'.isdigit() is true, and int() of 5,001 digits fails
    assert "no layer named '①'" in error(["rf", "lenet5", "--layer", "①"])
    out = error(["rf", "lenet5", "--layer", "1" + "0" * 5000])
    assert "there is no layer 100000000000… (5,001 digits)" in out


def test_rf_of_a_network_with_two_inputs() -> None:
    # was KeyError 0 in passes/receptive_field.py path_counts: the paths end at the second input too
    result = run(["rf", "siamese", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert '"paths"' in result.output


def test_rf_path_counts_of_a_huge_field_are_refused() -> None:
    out = error(["rf", "-"], "input 1x100\nconv(k=600000, c=1, d=2, pad=600000)\n")
    assert "archcalc counts paths over at most 1,000,000" in out


def test_an_output_name_too_long_for_the_file_system() -> None:
    # was OSError in cli/__init__.py check_output (File name too long)
    out = error(["render", "lenet5", "-o", "a" * 300 + ".dot"])
    assert out.startswith("error: cannot write aaaa") and out.rstrip().endswith("File name too long")


def test_a_claim_of_5000_digits() -> None:
    # was ValueError in check/claims.py (int-to-str limit)
    out = error(["check", "-"], "input 3x8x8\nrelu => rf=" + "9" * 5000 + "\n")
    assert out.startswith("<stdin>:2:12: error: a size of more than 40 digits")
    out = error(["check", "-"], "input 3x8x8\nrelu => params=" + "9" * 5000 + "\n")
    assert out.startswith("<stdin>:2:16: error: a figure of more than 40 digits")


def test_param_2input_leaks_no_syntax_warning() -> None:
    # Python's 'invalid decimal literal' SyntaxWarning was printed before the positioned error
    assert error(["report", "-"], "param k=2input\ninput 3x8x8\nconv3-{k}\n").startswith(
        "<stdin>:1:9: error: '2input' is not an arithmetic expression")
    assert error(["report", "-"], "param f(x) = 2input\ninput 3x8x8\nconv3-{f(1)}\n").startswith("<stdin>:1:")


@pytest.mark.parametrize("value", ["(3)", "3)\nrelu\nconv(k=1, c=4", "3, s=2", "٣", "1" * 17, "3x", "{2*3}"])
def test_calc_size_options_hold_sizes_only(value: str) -> None:
    # `calc pool --kernel '(3)'` was accepted and reported as 'k=(3)'
    out = error(["calc", "pool", "--input", "56x56", "--kernel", value])
    assert out.startswith("error: --kernel must be a whole number or sizes joined by x")


def test_calc_input_holds_sizes_only() -> None:
    assert "--input must be sizes joined by x" in error(["calc", "conv", "--input", "٣", "--kernel", "3",
                                                         "--in-channels", "3", "--out-channels", "4"])


@pytest.mark.parametrize("blank", [" ", "\t"])
def test_a_long_run_of_blanks_in_an_item_is_linear(blank: str) -> None:
    # the loop regex ('\s+for\s+…' searched) was quadratic: 20,000 spaces 3.7 s, 8,000 tabs 29 s
    start = time.perf_counter()
    out = error(["check", "-"], "input 3x8x8\nrelu" + blank * 20_000 + "y\n")
    assert time.perf_counter() - start < 1.5
    assert out.startswith("<stdin>:2:5: error: unexpected")


def test_many_for_words_are_linear() -> None:
    start = time.perf_counter()
    assert "malformed loop" in error(["check", "-"], "input 3x8x8\nrelu" + " for" * 50_000 + "\n")
    assert time.perf_counter() - start < 1.5


def test_loops_still_parse() -> None:
    result = run(["report", "-", "--format", "csv"], "param n=3\ninput 3x8x8\nconv3-4 for j in range(n)\n")
    assert result.exit_code == 0 and result.output.count("conv3-4") == 3
    assert "count or by a loop" in error(["check", "-"], "input 3x8x8\nconv3-4\t for  j  in range( 2 ) x2\n")


def test_a_column_after_a_tab_counts_characters() -> None:
    # the column counted a tab as 4 and the excerpt showed the line expanded: not what an editor shows
    out = error(["report", "-"], "input 3x8x8\nconv3-8,\n\tconv3-6q\n")
    assert out.splitlines()[:3] == ["<stdin>:3:2: error: malformed 'conv' token 'conv3-6q'", " 3 | \tconv3-6q",
                                    "   | \t^^^^^^^^"]
    out = error(["report", "-"], "input 3x8x8\nblock b(c):\n\tconv3-{c},\trelu,\tfoo\nb(4)\n")
    assert out.splitlines()[0].startswith("<stdin>:3:19: error: unknown layer 'foo'")
    assert out.splitlines()[2] == "   | \t          \t     \t^^^"


def test_only_newlines_end_a_line() -> None:
    # a \x1c (which str.splitlines breaks at) made line numbers disagree with the file's
    out = error(["report", "-"], "input 3x8x8\nrelu\x1cfoo\nconv3-4\n")
    assert out.startswith("<stdin>:2:5: error:")


def test_an_invisible_character_is_named_not_quoted() -> None:
    # "unexpected '\u200b'" showed nothing between the quotes
    out = error(["report", "-"], "input 3x8x8\nn1 = \u200bFC-2\n")
    assert out.startswith("<stdin>:2:6: error: unexpected U+200B (zero width space), an invisible character")


def test_export_of_a_big_model_allocates_no_weights() -> None:
    # 83M parameters were allocated and initialised in torch just to write the file (seconds, 330 MB)
    pytest.importorskip("torch")
    start = time.process_time()
    result = run(["export", "-", "--torch"], "input 64x16x16\nfc-4096\nlinear-4096, dense(2)\n")
    assert result.exit_code == 0 and "nn.Linear(in_features=16384, out_features=4096)" in result.output
    assert time.process_time() - start < 2.0


@pytest.mark.parametrize("arg", ["bn(eps=inf)", "bn(eps=nan)", "dropout(p=-inf)"])
def test_an_infinite_or_nan_float_argument_is_refused(arg: str) -> None:
    # bn(eps=inf) was accepted, and 'dropout probability p=nan is not between 0 and 1' put nan in the words
    out = error(["report", "-"], f"input 3x8x8\n{arg}\n")
    assert out.startswith("<stdin>:2:1: error: argument") and "(a finite number)" in out


@pytest.mark.parametrize("spec", [
    "input 1x1099511627776\nconv(k=1099511627776, c=2, s=1099511627776, p=0)\n",
    "input 3x1099511627776x1099511627776\nconv3-8/s2, conv3-8/d1000000, gap, fc-2\n",
])
def test_sizes_at_the_limit_go_through_every_pass(spec: str) -> None:
    # the receptive-field pass and the sharing factor overflowed floats on huge sizes
    for args in (["report", "-", "--format", "json"], ["report", "-"], ["check", "-"]):
        assert run(args, spec).exit_code == 0
    assert run(["rf", "-", "--format", "json"], spec).exit_code in (0, 2)


def test_an_output_name_that_is_not_utf8_is_printed() -> None:
    # was UnicodeEncodeError printing 'wrote \udcff.svg' (a name with byte 0xff reaches Python as a surrogate)
    with CliRunner().isolated_filesystem():
        result = run(["rf", "lenet5", "-o", "\udcff.svg"])
        assert result.exit_code == 0 and result.output.rstrip().endswith("wrote \ufffd.svg")


def test_render_depth_of_5000_digits() -> None:
    # was ValueError in cli/render.py parse_depth (int-to-str limit)
    assert "--depth takes a whole number, auto or all, not '99999" in error(["render", "lenet5", "-o", "x.dot",
                                                                         "--depth", "9" * 5000])


def test_a_bom_after_text_is_named() -> None:
    # "unexpected '\ufeff' after '10'" quoted an invisible character
    out = error(["check", "-"], "10\ufeff")
    assert out.startswith("<stdin>:1:3: error: unexpected U+FEFF (zero width no-break space), an invisible "
                          "character after '10'")
    assert "unexpected '\\u200bab' after 'relu'" in error(["report", "-"], "input 3x8x8\nrelu\u200bab\n")


def test_a_recurrent_layer_of_10_to_the_12_layers() -> None:
    # was MemoryError in layers/recurrent.py _layer_inputs (a list of 10¹² layer widths)
    out = error(["report", "-"], "input 35\nembedding(vocab=10000, dim=300)\nlstm(hidden=128, layers=1000000000000)\n")
    assert "layers=1,000,000,000,000 stacked layers: at most 10,000" in out.splitlines()[0]


def test_calc_conv_padding_holds_sizes_only() -> None:
    out = error(["calc", "conv", "--input", "56x56", "--kernel", "11", "--padding", "(3)", "--out-channels", "32"])
    assert out.startswith("error: --padding must be a whole number or sizes joined by x")


def test_a_rounded_claim_of_4295_digits() -> None:
    # was ValueError in check/claims.py rounding (the int-to-str limit)
    out = error(["check", "-"], "input 3x224x224\nrelu=>macs≈" + "9" * 4295 + "M")
    assert out.startswith("<stdin>:2:") and "a figure of more than 40 digits" in out.splitlines()[0]


def test_export_writes_a_same_padded_max_pool() -> None:
    # 'cannot write constructor code for Sequential(Pad(value=-inf), MaxPool2d)' (fuzz seed 1): the
    # window behind SAME's F.pad is an nn.Sequential, and -inf has no literal
    pytest.importorskip("torch")
    result = run(["export", "-", "--torch"], "input 16x4x4\nmaxpool3/s2/same\nconv3-8/s2/same\n")
    assert result.exit_code == 0, result.output
    assert "nn.Sequential(Pad(pads=(0, 1, 0, 1), value=float('-inf')), nn.MaxPool2d(" in result.output
    assert "class Pad(nn.Module)" in result.output


def test_rf_of_a_flat_input_is_a_clean_error() -> None:
    # IndexError in rf_plot (fuzz seed 1): a plain `input 4` has no axis to count paths over
    out = error(["rf", "-", "--layer", "0"], "param seq=4\ninput {seq}\nfc-3\n")
    assert "has no spatial axes" in out


def test_a_connection_table_map_number_of_4400_digits() -> None:
    # ValueError from int() past Python's 4,300-digit limit (fuzz seed 1)
    out = error(["report", "-"], 'input 1x32x32\ntable-conv5-16/p0("' + "9" * 4400 + '")\n')
    assert "'99999999999999999999…' is not a map number" in out


def test_a_json_column_after_a_tab_counts_characters() -> None:
    # the messages counted a tab as one column but the JSON's `column` still as 4 (the parser's)
    spec = "input 3x8x8\nconv3-4,\trelu => 4x8x8\n\tfc-10\n"
    layers = json.loads(run(["report", "-", "--format", "json"], spec).output)["layers"]
    assert [(x["spec"], x["line"], x["column"]) for x in layers] == [
        ("input 3x8x8", 1, 7), ("conv3-4", 2, 1), ("relu", 2, 10), ("flatten", 3, 2), ("fc-10", 3, 2)]
    (row,) = json.loads(run(["check", "-", "--format", "json"], spec).output)["results"]
    assert (row["line"], row["column"]) == (2, 18)  # the claim `4x8x8` starts at the 18th character


def test_export_of_a_mid_sized_model_initialises_no_weights() -> None:
    # between 5M and 50M parameters export built the model on the CPU and initialised every weight
    # (resnet50: 114 MB more than `import torch`); now nothing is written into them, so no page is touched
    pytest.importorskip("torch")
    script = (
        "import resource, torch\n"
        "from archcalc import load_text\n"
        "from archcalc.pytorch.export import export_source\n"
        "graph = load_text('input 4096\\nfc-4096 x2, fc-1000\\n')  # 37.7M parameters, 151 MB in float32\n"
        "torch.nn.Linear(8, 8)  # torch's own first-use allocations, before the baseline\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "export_source(graph)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    grown_kb = int(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
    assert grown_kb < 40_000, f"export grew by {grown_kb:,} KB"
