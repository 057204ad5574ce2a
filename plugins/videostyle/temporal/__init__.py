"""Temporal consistency: optical flow between input frames (flow), the warping error that
measures flicker (flicker), and the transform that steadies any styling model (steady).

Importing the package is cheap: OpenCV and torch are imported inside the functions that use them.
"""
