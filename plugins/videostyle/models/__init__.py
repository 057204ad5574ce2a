"""Style-transfer networks, their weights, and the Stylizer that runs them on frames.

Import from the submodules: `styles` is cheap, the rest import torch.
"""
