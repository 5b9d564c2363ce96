"""What `archcalc import TARGET` names: a factory or class in a package or a file, or an ONNX file.

`package.module:factory` and `path/to/model.py:Net` are called with no arguments, or with
`--arg key=value` (values read as Python literals: `num_classes=10`, `pretrained=False`,
`name='tiny'`; anything else is a string). The model is built on the `meta` device, so a
70-billion-parameter model costs no memory; a constructor that computes with tensor values
(RegNet's width rules) is built on the CPU instead, and the import says so.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from archcalc.errors import ModelImportError, UsageError
from archcalc.records import record


@record
class Target:
    text: str  # as given
    where: str  # the module or file
    attr: str  # the factory, class or module object in it (dotted)
    is_file: bool

    @property
    def label(self) -> str:
        return f"{self.where}:{self.attr}"


def is_target(text: str) -> bool:
    """Whether a SPEC argument names a model to import rather than a spec: `x.py:Net`,
    `pkg.mod:factory` or `model.onnx`."""
    if text.endswith(".onnx"):
        return True
    where, colon, attr = text.rpartition(":")
    if not colon or not attr or not where or "\n" in text:
        return False
    if len(where) == 1 and where.isalpha():  # a Windows drive, 'C:foo'
        return False
    return where.endswith(".py") or all(part.isidentifier() for part in where.split("."))


def parse_target(text: str) -> Target:
    where, colon, attr = text.rpartition(":")
    if not colon or not where or not attr:
        raise UsageError(f"'{text}' is not an importable target: write package.module:factory, "
                         f"path/to/model.py:ClassOrFactory, or a .onnx file")
    if not all(part.isidentifier() for part in attr.split(".")):
        raise UsageError(f"'{attr}' in '{text}' is not a Python name (a factory, a class or a module object)")
    return Target(text, where, attr, where.endswith(".py"))


def parse_args(pairs: Sequence[str]) -> dict[str, Any]:
    """('num_classes=10', 'name=tiny') → {'num_classes': 10, 'name': 'tiny'}."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        key = key.strip()
        if not eq or not key.isidentifier():
            raise UsageError(f"--arg takes KEY=VALUE with KEY a Python name, as in --arg num_classes=10 "
                             f"(got '{pair}')")
        try:
            out[key] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key] = value.strip()
    return out


def load_object(target: Target) -> Any:
    """The factory, class or object the target names (its module imported)."""
    module = _import(target)
    obj: Any = module
    for i, part in enumerate(target.attr.split(".")):
        if not hasattr(obj, part):
            from archcalc.lang.suggest import did_you_mean

            names = [n for n in dir(obj) if not n.startswith("_")]
            hint = did_you_mean(part, names)
            owner = target.where if i == 0 else ".".join([target.where, *target.attr.split(".")[:i]])
            raise ModelImportError(f"{owner} has no '{part}'" + (f"; {hint}" if hint else "")
                                   + f" (names it has: {', '.join(sorted(names)[:12])}"
                                   + (", …" if len(names) > 12 else "") + ")")
        obj = getattr(obj, part)
    return obj


def _import(target: Target) -> Any:
    if target.is_file:
        path = os.path.abspath(target.where)
        if not os.path.exists(path):
            raise ModelImportError(f"{target.where}: no such file (the target is {target.text})")
        stem = os.path.splitext(os.path.basename(path))[0].replace("-", "_")
        # named after the file where the name is free, so class names in the spec read `model.Block`
        name = stem if stem.isidentifier() and stem not in sys.modules else "_archcalc_model_" + stem
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ModelImportError(f"{target.where} cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(spec)
        folder = os.path.dirname(path)
        added = folder not in sys.path
        if added:
            sys.path.insert(0, folder)  # its own imports of files beside it work
        try:
            sys.modules[name] = module
            spec.loader.exec_module(module)
        except BaseException as e:  # noqa: BLE001 - the user's module failed: say where and why
            sys.modules.pop(name, None)
            raise _raised(f"importing {target.where}", e) from None
        finally:
            if added:
                sys.path.remove(folder)
        return module
    try:
        return importlib.import_module(target.where)
    except ModuleNotFoundError as e:
        if e.name and (target.where == e.name or target.where.startswith(e.name + ".")):
            raise ModelImportError(f"no module named '{e.name}' (the target is {target.text}): is it installed "
                                   f"in this Python, or is the file meant (path/to/{e.name.split('.')[-1]}.py:"
                                   f"{target.attr})?") from None
        raise _raised(f"importing {target.where}", e) from None
    except BaseException as e:  # noqa: BLE001
        raise _raised(f"importing {target.where}", e) from None


def build(target: Target, kwargs: Mapping[str, Any]) -> tuple[Any, str]:
    """The nn.Module the target makes, on the meta device where its constructor allows; and a note
    when it had to be built on the CPU."""
    from archcalc.importers.torch_trace import require_torch

    torch = require_torch()
    from torch import nn

    obj = load_object(target)
    if isinstance(obj, nn.Module):
        if kwargs:
            raise UsageError(f"{target.text} is a module object, not a factory: it takes no --arg")
        return obj, ""
    if not callable(obj):
        raise ModelImportError(f"{target.text} is a {type(obj).__name__}, not a module, class or factory")
    call = f"{target.attr}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    note = ""
    try:
        with torch.device("meta"):
            model = obj(**kwargs)
    except TypeError as e:
        raise _raised(f"calling {call}", e, hint="its arguments: give them with --arg key=value") from None
    except (NotImplementedError, RuntimeError) as e:
        if "meta" not in str(e).lower():
            raise _raised(f"calling {call}", e) from None
        try:
            model = obj(**kwargs)  # its constructor reads tensor values: build it for real
        except BaseException as e2:  # noqa: BLE001
            raise _raised(f"calling {call}", e2) from None
        size = sum(p.numel() * p.element_size() for p in model.parameters())
        note = (f"built on the CPU, not the meta device: its constructor reads tensor values "
                f"({str(e).strip().splitlines()[0][:80]}); {size:,} bytes of parameters were allocated")
    except BaseException as e:  # noqa: BLE001
        raise _raised(f"calling {call}", e) from None
    if not isinstance(model, nn.Module):
        raise ModelImportError(f"{call} returned a {type(model).__name__}, not a torch.nn.Module")
    return model, note


def _raised(what: str, e: BaseException, hint: str = "") -> ModelImportError:
    """One line: where in the user's code it failed, the exception, what to do."""
    frames = traceback.extract_tb(e.__traceback__)
    here = os.path.dirname(os.path.dirname(__file__))
    user = [f for f in frames if not f.filename.startswith(here) and "importlib" not in f.filename]
    where = f"{_short(user[-1].filename)}:{user[-1].lineno}: " if user else ""
    detail = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if isinstance(e, SyntaxError) and e.filename:
        where = f"{_short(e.filename)}:{e.lineno}: "
        detail = e.msg
    if isinstance(e, SystemExit):
        detail = f"it called sys.exit({e.code})"
    return ModelImportError(f"{where}{what} raised {type(e).__name__}: {detail}" + (f"; {hint}" if hint else ""))


def _short(filename: str) -> str:
    try:
        rel = os.path.relpath(filename)
        return filename if rel.startswith("..") else rel
    except ValueError:
        return filename
