"""The pipeline's steps, one module each: preprocess → score → stitch → publish (see `table`)."""
