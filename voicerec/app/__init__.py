"""What the Gradio app (app.py) shows beyond the library's results: its figures."""
