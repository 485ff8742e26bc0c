"""Audio and what is measured on it: loading a recording, pitch, range, formants, keys, note adjustment,
vocals separation and the singing synthesiser used by tests and examples."""
