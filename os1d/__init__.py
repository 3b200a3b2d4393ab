"""os1d: a local, private voice companion daemon."""

import os

__version__ = "0.1.0"

# onnxruntime writes a device id and a queue of telemetry events under ~/.cache/Microsoft when it is
# imported; os1d records nothing it was not asked to, so that is switched off before any import of it.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# numpy's OpenBLAS leaves a worker thread spinning for about 100 ms of a core after every product it splits
# between threads; os1d's products are small (mel filters, a few per turn), and mid-turn that spin took CPU
# from Whisper and the voice. One thread, set before numpy is first imported (a value the user set is kept).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
