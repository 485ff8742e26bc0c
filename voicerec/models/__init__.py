"""Self-contained Hub model code: these files import only torch, transformers and numpy so that
`AutoModel.from_pretrained(..., trust_remote_code=True)` works without voicerec installed."""
