"""The pure domain core: no I/O, no framework imports (checked by import-linter)."""
