"""The conversation: transcription, the speech LLM, prompts and turns."""
