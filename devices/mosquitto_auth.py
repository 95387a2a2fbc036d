"""Device logins and ACL for an external Mosquitto broker.

Mosquitto cannot read Vaki's argon2 hashes, so each device also carries its secret hashed
the way ``mosquitto_passwd`` does (PBKDF2-SHA512, ``$7$``); ``vaki mqtt export-auth``
writes those into a password file next to an ACL file that encodes the contract's rules.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable

from devices.topics import DEVICE_PREFIX, SERVICE_USERNAME

# mosquitto_passwd's own default; enough for 192-bit random device secrets.
DEVICE_ITERATIONS = 101
# A person may choose the server's password: make guessing it expensive.
SERVER_ITERATIONS = 100_000

MOSQUITTO_CONF = """\
# Vaki: devices log in with their id and secret; the ACL keeps each to its own topics.
allow_anonymous false
password_file {password_file}
acl_file {acl_file}
# A device's client id is its username, so one device cannot take over another's session.
use_username_as_clientid true
# Vaki acknowledges messages only after its database commit: let a whole batch be in
# flight to it, and let the broker queue a backlog rather than drop it.
max_inflight_messages 1000
max_queued_messages 100000
"""


def mosquitto_hash(secret: str, iterations: int = DEVICE_ITERATIONS) -> str:
    """``secret`` hashed as mosquitto_passwd writes it: ``$7$iterations$salt$hash``."""
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, iterations)
    encoded_salt = base64.b64encode(salt).decode()
    return f"$7${iterations}${encoded_salt}${base64.b64encode(digest).decode()}"


def render_password_file(
    devices: Iterable[tuple[str, str]], server_username: str, server_password: str
) -> str:
    """A Mosquitto password file: the server's login and one line per (device id, hash)."""
    lines = [f"{server_username}:{mosquitto_hash(server_password, SERVER_ITERATIONS)}"]
    lines.extend(f"{device_id}:{password_hash}" for device_id, password_hash in devices)
    return "\n".join(lines) + "\n"


def render_acl_file(server_username: str = SERVICE_USERNAME) -> str:
    """A Mosquitto ACL: the server reads and writes every device topic; a device (``%u``)
    writes only its reading, event, status and raw topics and reads only its cmd and ack."""
    prefix = f"{DEVICE_PREFIX}%u/"
    return (
        f"user {server_username}\n"
        f"topic readwrite {DEVICE_PREFIX}#\n"
        "\n"
        f"pattern write {prefix}reading\n"
        f"pattern write {prefix}event\n"
        f"pattern write {prefix}status\n"
        f"pattern write {prefix}raw/+\n"
        f"pattern read {prefix}cmd\n"
        f"pattern read {prefix}ack\n"
    )
