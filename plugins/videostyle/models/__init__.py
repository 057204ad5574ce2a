"""The per-frame models behind one seam (`base.FrameModel`), registered by name (`registry`).

Models: `multistyle26` (the default: the 26-style network, `multistyle.py` with its named
styles in `styles.py`) and `checkpoint` (pytorch/examples' TransformerNet, `transformer_net.py`),
both run by `style_runner.StyleRunner` with weights from `weights.py`. `base`, `registry`,
`styles` and the model modules are cheap to import; the networks, weights and StyleRunner import
torch.
"""
