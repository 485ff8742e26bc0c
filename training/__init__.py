"""Training recipes: one script per model kind, one config per checkpoint (SpeechBrain-style)."""
