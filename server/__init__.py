"""Assembly and operation of the service: settings, app, lifespans, database, CLI.

The only package that knows every other one; nothing imports it.
"""
