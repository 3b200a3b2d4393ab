"""Audio stages: devices (mic, speaker, files), wake word, utterance segmentation."""
