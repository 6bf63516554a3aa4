"""Tests of the Ray adapter, ``vaeray/sweep/ray/``. The folder is not named ``ray``: tests/sweep/conftest.py
puts tests/sweep on ``sys.path`` (for the plugin module), where a ``ray`` package would shadow Ray itself."""
