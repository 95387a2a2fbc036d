"""Assembly and operation of the service: settings, app, lifespans, database, CLI, and the
wiring of the flow: the alarm path (``alarm_path``) and the check-in path (``checkin_path``).

The only package that knows every other one; nothing imports it but ``bench``, which runs
the service in-process. The ``vaki`` command lives in ``server/cli/``, one module per
command group; ``vaki simulate`` and ``vaki serve --demo`` run ``homesim``'s homes.
"""
