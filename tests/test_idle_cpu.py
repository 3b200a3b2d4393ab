"""Idle means idle: once a model's work is done, none of os1d's threads spins on, taking the cores from the models
still working beside it (Whisper and the voice share two cores mid-turn)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from speech import kokoro

# The daemon's own loading (os1d imported first, as `os1d run` does), each model run once in its lane, and the
# CPU time the whole process uses in the 0.3 s after each.
SCRIPT = """
import os1d
import asyncio, json, resource, sys, time
from pathlib import Path
import numpy as np
from os1d.agent.decoding import Sampling
from os1d.agent.prompt import Message
from os1d.config import load_config
from os1d.lanes import Models

def idle_ms():
    def cpu():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    before = cpu()
    time.sleep(0.3)
    return round((cpu() - before) * 1000, 1)

async def main():
    models = Models(load_config(), Path(sys.argv[1]), lambda event: None, lambda: 0.0)
    await models.load()
    stt, llm, voice, memory = [await task for task in (models.transcriber, models.speech_llm, models.voice,
                                                       models.memory)]
    speech = np.load(sys.argv[2])
    idle = {"loaded": idle_ms()}
    np.ones((80, 201), np.float32) @ np.ones((201, 3000), np.float32)  # (a mel filter bank's product)
    idle["numpy"] = idle_ms()
    await models.stt_lane.run(stt.transcribe, speech)
    idle["whisper"] = idle_ms()
    audio = await models.llm_lane.run(llm.prepare_audio, speech)
    idle["audio encoder"] = idle_ms()
    reply = [Message("system", "You are OS1."), Message("user", "", audio=True)]
    await models.llm_lane.run(lambda: list(llm.stream(reply, audio, Sampling())))
    idle["llm"] = idle_ms()
    await models.tts_lane.run(voice.synthesize, "Hello there, nice to hear you.")
    idle["voice"] = idle_ms()
    await models.memory_lane.run(memory.recall, "what should I cook tonight?")
    idle["memory"] = idle_ms()
    models.close()
    print(json.dumps(idle))

asyncio.run(main())
"""


def test_no_thread_spins_once_a_model_is_done(tmp_path: Path, kit: Path, user_env: dict[str, str]) -> None:
    speech = tmp_path / "speech.npy"
    np.save(speech, kokoro("What should I cook tonight?", "jm_kumo"))
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(kit), str(speech)], env=user_env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    idle = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(idle) == {"loaded", "numpy", "whisper", "audio encoder", "llm", "voice", "memory"}
    # a spinning thread takes 40-100 ms of a core in those 0.3 s (numpy's OpenBLAS about 100 ms after each split
    # product, an onnxruntime pool allowed to spin about 40 ms after each run); a sleeping one takes none
    assert all(ms < 20 for ms in idle.values()), idle
