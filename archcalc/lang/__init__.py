"""The spec language: text → syntax tree (`parse`) → the layers it describes (`expand`).

Shapes are not known here: `archcalc.passes.shapes.infer` turns the drafts into the
layer graph (`archcalc.load_text` runs the three in a row).
"""

from archcalc.lang.bind import parse_shape
from archcalc.lang.expand import MAX_NODES, expand
from archcalc.lang.parser import parse

__all__ = ["MAX_NODES", "expand", "parse", "parse_shape"]
