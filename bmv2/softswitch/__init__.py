"""The built-in software target: runs the committed BMv2 JSON and speaks P4Runtime."""
