#!/usr/bin/env python3
"""Measure the TensorFlow profiler's FLOP convention and reproduce it to the unit.

Stand-alone companion of tools/peer_reference.py (TensorFlow and PyTorch live
in separate virtual environments).  Not part of archcalc, not run by the tests:

    /work/tfvenv/bin/python tools/peer_reference_tf.py > tests/reference/peer_reference_tf.json

The TF profiler measured is ``tf.compat.v1.profiler.profile(graph,
run_meta=RunMetadata(), cmd='op', options=ProfileOptionBuilder.float_operation())``
on the frozen inference graph of a Keras model (the usual recipe:
``tf.function(model).get_concrete_function(TensorSpec([1, ...]))`` then
``convert_variables_to_constants_v2_as_graph``).  Its ``total_float_ops`` is
the figure people quote.  The models are Keras' own (keras.applications,
weights=None), NOT the torchvision ones: their layers differ (Keras ResNet50
is v1 with conv biases, MobileNetV2 pads explicitly, EfficientNetB0 has an
input Rescaling/Normalization), so the totals are compared with the
conv/matmul MACs of the *same* graph (``graph_macs``), which is what
FlopCounterMode would count for it.

For every graph node the script applies its own per-op formula (``tf_rule``)
and asserts that the per-op-type sums and the total equal the profiler's.
"""

import datetime
import json
import os
import sys
from collections import Counter
from importlib import metadata

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2_as_graph  # noqa: E402

tf.get_logger().setLevel("ERROR")

COMMAND = ("/work/tfvenv/bin/python tools/peer_reference_tf.py "
           "> tests/reference/peer_reference_tf.json")

L = keras.layers


def probe_cv():
    x = inp = keras.Input((32, 32, 3), batch_size=1)
    x = L.Conv2D(16, 3, padding="same")(x)                     # bias
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    y = L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    y = L.Conv2D(16, 1, use_bias=False)(y)
    y = L.Activation("sigmoid")(y)
    y = L.Add()([x, y])
    y = L.Multiply()([x, y])
    y = L.Activation("tanh")(y)
    y = L.Activation("gelu")(y)
    p = L.MaxPooling2D(2)(y)                                   # 16x16
    q = L.AveragePooling2D(2)(p)                               # 8x8
    q = L.UpSampling2D(2, interpolation="nearest")(q)          # 16x16
    q = L.Concatenate()([p, q])                                # 32 ch
    q = L.UpSampling2D(2, interpolation="bilinear")(q)         # 32x32
    q = L.Conv2DTranspose(8, 2, strides=2)(p)                  # 32x32x8
    g = L.GlobalAveragePooling2D()(q)
    h = L.GlobalMaxPooling2D()(y)
    h = L.Concatenate()([g, h])
    h = L.Dropout(0.5)(h)
    h = L.Dense(10)(h)
    h = L.Dense(10, use_bias=False)(h)
    out = L.Softmax()(h)
    return keras.Model(inp, out)


def probe_opaque():
    """Layers whose TF graph hides shapes: a grouped Conv2D (Keras runs it as
    an XLA-compiled function call) and swish (IdentityN with a custom
    gradient).  Their outputs have no static shape, so the profiler skips them
    AND every op after them (here the Dense)."""
    x = inp = keras.Input((32, 32, 16), batch_size=1)
    x = L.Conv2D(16, 3, padding="same")(x)
    x = L.Conv2D(16, 3, padding="same", groups=4, use_bias=False)(x)
    x = L.Activation("swish")(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inp, L.Dense(10)(x))


def probe_seq():
    ids = keras.Input((12,), batch_size=1, dtype="int32")
    x = L.Embedding(100, 32)(ids)
    x = L.LayerNormalization()(x)
    a = L.MultiHeadAttention(num_heads=4, key_dim=8)(x, x)
    x = L.Add()([x, a])
    x = L.Dense(16)(x)                                         # Dense on 3-D
    x = L.LSTM(8, return_sequences=True)(x)
    x = L.GRU(8)(x)
    out = L.Dense(3)(x)
    return keras.Model(ids, out)


def lstm_net():
    ids = keras.Input((35,), batch_size=1, dtype="int32")
    x = L.Embedding(10000, 300)(ids)
    x = L.LSTM(128, return_sequences=True)(x)
    x = L.LSTM(128)(x)
    return keras.Model(ids, L.Dense(10)(x))


KA = keras.applications
MODELS = {
    "vgg16": (lambda: KA.VGG16(weights=None), (1, 224, 224, 3), tf.float32),
    "resnet50": (lambda: KA.ResNet50(weights=None), (1, 224, 224, 3), tf.float32),
    "densenet121": (lambda: KA.DenseNet121(weights=None), (1, 224, 224, 3), tf.float32),
    "mobilenet_v2": (lambda: KA.MobileNetV2(weights=None), (1, 224, 224, 3), tf.float32),
    "efficientnet_b0": (lambda: KA.EfficientNetB0(weights=None), (1, 224, 224, 3), tf.float32),
    "lstm_net": (lstm_net, (1, 35), tf.int32),
    "probe_cv": (probe_cv, (1, 32, 32, 3), tf.float32),
    "probe_seq": (probe_seq, (1, 12), tf.int32),
    "probe_opaque": (probe_opaque, (1, 32, 32, 16), tf.float32),
}


def frozen_graph(model, shape, dtype):
    fn = tf.function(lambda x: model(x, training=False))
    concrete = fn.get_concrete_function(tf.TensorSpec(shape, dtype))
    frozen, graph_def = convert_variables_to_constants_v2_as_graph(concrete)
    return frozen.graph, graph_def


def tf_profile(graph):
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    prof = tf.compat.v1.profiler.profile(graph=graph, run_meta=tf.compat.v1.RunMetadata(),
                                         cmd="op", options=opts)
    # the 'op' view nests each op type under the previous one (ordered by
    # float_ops); float_ops is each type's own figure
    by_type = {}
    node = prof
    while node.children:
        node = node.children[0]
        if node.float_ops:
            by_type[node.name] = int(node.float_ops)
    return int(prof.total_float_ops), by_type


def shape(graph, name):
    name = name.lstrip("^")
    if ":" not in name:
        name += ":0"
    dims = graph.get_tensor_by_name(name).shape
    if not dims.is_fully_defined():
        raise ValueError(name)                     # tfprof skips such ops (0)
    return [int(d) for d in dims]


def numel(s):
    return int(np.prod(s, dtype=np.int64))


BINARY = {"Add", "AddV2", "Sub", "Mul", "RealDiv", "Maximum", "Minimum", "Pow",
          "GreaterEqual", "Greater", "LessEqual", "Less", "Equal", "NotEqual"}
UNARY1 = {"Reciprocal", "Square", "Log", "Neg", "AssignSub", "AssignAdd"}


def tf_rule(graph, node):
    """TF float_ops of one graph node (flops_registry.py and nn_ops.py)."""
    op = node.op
    out = lambda: shape(graph, node.name)          # noqa: E731
    in0 = lambda: shape(graph, node.input[0])      # noqa: E731
    if op == "Conv2D":
        f = shape(graph, node.input[1])            # [kh, kw, in/groups, out]
        return 2 * numel(out()) * f[0] * f[1] * f[2]
    if op == "Conv3D":
        f = shape(graph, node.input[1])
        return 2 * numel(out()) * f[0] * f[1] * f[2] * f[3]
    if op == "DepthwiseConv2dNative":
        f = shape(graph, node.input[1])
        return 2 * numel(out()) * f[0] * f[1]
    if op == "BiasAdd":
        return numel(in0())
    if op == "Conv2DBackpropInput":                # Conv2DTranspose
        o = out()
        k = shape(graph, node.input[1])
        st = list(node.attr["strides"].list.i)
        v = 2 * numel(o) * numel(k) / (o[-1] * st[1] * st[2])
        assert v == int(v)
        return int(v)
    if op == "MatMul":
        a = in0()
        k = a[0] if node.attr["transpose_a"].b else a[1]
        return 2 * k * numel(out())
    if op in ("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"):
        a = in0()
        k = a[-2] if node.attr["adj_x"].b else a[-1]
        return 2 * k * numel(out())
    if op in BINARY:
        return numel(out())
    if op == "SquaredDifference":
        return 2 * numel(out())
    if op in UNARY1:
        return numel(in0())
    if op == "Rsqrt":
        return 2 * numel(in0())
    if op == "Softmax":
        return 5 * numel(in0())
    if op == "Mean":
        return numel(in0())                        # in*1 + out*(1-1)
    if op in ("Sum", "ArgMax", "ArgMin"):
        return numel(in0()) - numel(out())
    if op in ("AvgPool", "MaxPool"):
        k = list(node.attr["ksize"].list.i)
        return int(np.prod(k)) * numel(out())
    if op == "AddN":
        return numel(in0()) * (len(node.input) - 1)
    return 0   # Relu, Relu6, Sigmoid, Tanh, ConcatV2, Pad, Resize*, FusedBatchNorm*, ...


def graph_macs(graph, node):
    """conv / matmul MACs of a node (what FlopCounterMode would count)."""
    op = node.op
    if op == "Conv2D":
        f = shape(graph, node.input[1])
        return numel(shape(graph, node.name)) * f[0] * f[1] * f[2]
    if op == "DepthwiseConv2dNative":
        f = shape(graph, node.input[1])
        return numel(shape(graph, node.name)) * f[0] * f[1]
    if op == "Conv2DBackpropInput":             # Conv2DTranspose
        f = shape(graph, node.input[1])         # [kh, kw, out, in]
        return numel(shape(graph, node.input[2])) * f[0] * f[1] * f[2]
    if op == "MatMul":
        a = shape(graph, node.input[0])
        k = a[0] if node.attr["transpose_a"].b else a[1]
        return k * numel(shape(graph, node.name))
    if op in ("BatchMatMulV2", "BatchMatMulV3", "BatchMatMul"):
        a = shape(graph, node.input[0])
        k = a[-2] if node.attr["adj_x"].b else a[-1]
        return k * numel(shape(graph, node.name))
    return 0


def analyse(name):
    print(f"[peer_reference_tf] {name}", file=sys.stderr)
    keras.utils.set_random_seed(0)
    ctor, shp, dtype = MODELS[name]
    model = ctor()
    graph, graph_def = frozen_graph(model, shp, dtype)
    total, by_type = tf_profile(graph)
    pred = Counter()
    macs = 0
    missing = 0
    nodes = [op.node_def for op in graph.get_operations()]
    for node in nodes:
        try:
            v = tf_rule(graph, node)
            macs += graph_macs(graph, node)
        except ValueError:
            missing += 1
            v = 0
        if v:
            pred[node.op] += v
    assert dict(pred) == by_type, (name, dict(pred), by_type)
    assert sum(pred.values()) == total, (name, sum(pred.values()), total)
    ops = Counter(n.op for n in nodes)
    return {
        "tf_total_float_ops": total,
        "tf_total_float_ops_half": total // 2,
        "graph_macs": macs,
        "percent_half_vs_graph_macs": round(100.0 * (total / 2 - macs) / macs, 4) if macs else None,
        "by_op_type": by_type,
        "graph_op_counts": dict(sorted(ops.items())),
        "uncounted_op_types": sorted(t for t in ops if t not in by_type),
        "library_functions": len(graph_def.library.function),
        "nodes_with_unknown_shape": missing,
        "keras_params": int(model.count_params()),
        "input": list(shp),
        "formula_verified": True,
    }


def main():
    out = {
        "meta": {
            "python": sys.version.split()[0],
            "tensorflow": tf.__version__,
            "tensorflow_cpu": metadata.version("tensorflow-cpu"),
            "keras": keras.__version__,
            "date": datetime.date.today().isoformat(),
            "command": COMMAND,
            "call": "tf.compat.v1.profiler.profile(graph=frozen.graph, "
                    "run_meta=tf.compat.v1.RunMetadata(), cmd='op', "
                    "options=ProfileOptionBuilder.float_operation()) .total_float_ops; "
                    "graph from convert_variables_to_constants_v2_as_graph("
                    "tf.function(lambda x: model(x, training=False))"
                    ".get_concrete_function(tf.TensorSpec([1, ...])))",
            "general": "Keras models (keras.applications, weights=None, batch 1, "
                       "NHWC); FLOPs (2 per multiply-add); per-op-type sums and the "
                       "total are asserted equal to tf_rule() applied to every node",
        },
        "models": {},
    }
    for name in MODELS:
        out["models"][name] = analyse(name)
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
