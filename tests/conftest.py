"""Fixtures shared by every test live in helpers.py, loaded here as a plugin."""

pytest_plugins = ["helpers"]
