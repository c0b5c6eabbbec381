"""sav-benchmark: accuracy, speed and memory of promptable video segmentation on SA-V."""

__version__ = "0.1.0"
PROG = "jetson_benchmark.py"  # the program's name in messages
