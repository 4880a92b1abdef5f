"""help(onlstm.ONLSTM) tells the truth: its "equivalent to looping the one-step function"
code runs and gives the layer's numbers, and its Attributes list every parameter with the
shape the module really has."""

import pydoc
import re
import textwrap

import pytest
import torch

import onlstm
from onlstm import ONLSTM, ONLSTMCell, Distances


def _doc_loop():
    """The code block of ONLSTM's docstring, as a function ``layer_forward``."""
    doc = ONLSTM.__doc__
    start = doc.index("        from onlstm.cell import cell_step")
    end = doc.index("\n    Attributes", start)
    return textwrap.dedent(doc[start:end])


@pytest.mark.parametrize("training,convention", [(True, "published"), (True, "rescaled"), (False, "published")])
def test_docstring_loop_equals_the_layer(training, convention, impl):
    p, chunk, variant = 0.3, 2, "symmetric"
    torch.manual_seed(0)
    model = ONLSTM(3, 6, chunk_size=chunk, dropconnect=p, master_input=variant,
                   dropconnect_convention=convention).double().train(training)
    x = torch.randn(5, 2, 3, dtype=torch.double)
    h0, c0 = torch.randn(2, 6, dtype=torch.double), torch.randn(2, 6, dtype=torch.double)
    namespace = dict(torch=torch, Distances=Distances, dropconnect=p, training=training,
                     dropconnect_convention=convention, chunk_size=chunk, master_input=variant)
    exec(_doc_loop(), namespace)
    params = [getattr(model, f"{name}_l0") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    torch.manual_seed(7)  # the DropConnect mask: same draw on both sides
    out, (h, c), dist = namespace["layer_forward"](x, h0, c0, *params)
    torch.manual_seed(7)
    out2, (h2, c2), dist2 = model(x, (h0[None], c0[None]), return_distances=True)
    for a, b in [(out, out2), (h, h2[0]), (c, c2[0]), (dist.forget, dist2.forget[0]), (dist.input, dist2.input[0])]:
        assert (a - b).abs().max().item() < 1e-12


def _documented_shapes(model, G, n, D):
    return {
        "weight_ih_l{k}": lambda k: (G, model.input_size if k == 0 else D * n),
        "weight_hh_l{k}": lambda k: (G, n),
        "bias_ih_l{k}": lambda k: (G,),
        "bias_hh_l{k}": lambda k: (G,),
    }


def test_help_shows_equations_loop_and_every_parameter_with_its_shape():
    text = pydoc.render_doc(onlstm.ONLSTM, renderer=pydoc.plaintext)
    for needle in ("cumax(a_f)", "1 - cumax(a_i)", "revcumsum(softmax(a_i))", "c_t  = f^_t * c_{t-1}",
                   "h_t  = sigmoid(o) * tanh(c_t)", "looping the one-step function", "cell_step(",
                   "docs/spec.md §1", "Attributes"):
        assert needle in text, needle
    attributes = ONLSTM.__doc__[ONLSTM.__doc__.index("Attributes"):]
    model = ONLSTM(5, 12, num_layers=3, chunk_size=3, bidirectional=True)
    n, m, D = 12, 4, 2
    G = 4 * n + 2 * m
    assert model.gate_size == G and model.num_levels == m
    shapes = _documented_shapes(model, G, n, D)
    assert "(G, input_size) for k = 0" in attributes and "(G, D*n) for k > 0" in attributes
    for name, param in model.named_parameters():
        k = int(re.search(r"_l(\d+)", name).group(1))
        generic = re.sub(r"_l\d+", "_l{k}", name)
        assert generic in attributes, generic
        assert tuple(param.shape) == shapes[generic.replace("_reverse", "")](k), name


def test_cell_help_lists_its_parameters_with_shapes():
    cell = ONLSTMCell(5, 12, chunk_size=3)
    doc = ONLSTMCell.__doc__
    assert "cell_step" in doc
    attributes = doc[doc.index("Attributes"):]
    G = cell.gate_size
    expected = {"weight_ih": (G, 5), "weight_hh": (G, 12), "bias_ih": (G,), "bias_hh": (G,)}
    for name, param in cell.named_parameters():
        assert name in attributes and tuple(param.shape) == expected[name]
    assert "weight_ih: input-to-hidden weight, (G, input_size)" in attributes
    assert "weight_hh: hidden-to-hidden weight, (G, n)" in attributes
    assert "bias_ih, bias_hh: biases, (G,) each" in attributes


def test_language_model_is_exported():
    from onlstm.lm import LanguageModel, LMConfig

    assert onlstm.LanguageModel is LanguageModel and onlstm.LMConfig is LMConfig
    assert {"LanguageModel", "LMConfig"} <= set(onlstm.__all__)
