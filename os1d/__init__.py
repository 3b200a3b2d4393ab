"""os1d: a local, private voice companion daemon."""

import os

__version__ = "0.1.0"

# onnxruntime writes a device id and a queue of telemetry events under ~/.cache/Microsoft when it is
# imported; os1d records nothing it was not asked to, so that is switched off before any import of it.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
