"""/readyz proves each MQTT lane end to end and tells nobody where the broker is.

Issue 13, finding 1 (``/readyz`` stayed 200 while alarm intake was silenced) and 10 (it
showed the broker's URL): a broker that keeps the connection but stops delivering one
lane's messages makes the server not ready, naming the lane.
"""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from devices.mosquitto_auth import mosquitto_hash
from server.app import create_app
from server.settings import Settings
from tests.conftest import PrivateMosquitto
from tests.security.broker.attacks import record


async def test_a_lane_whose_messages_stop_makes_the_server_not_ready(
    settings: Settings, private_mosquitto: PrivateMosquitto
) -> None:
    # The server's login may connect and subscribe everywhere, but the ACL lets it read
    # readings only: the alarm lane's socket is open and its messages never arrive.
    passwords = private_mosquitto.directory / "passwd"
    acl = private_mosquitto.directory / "acl"
    passwords.write_text(f"vaki-server:{mosquitto_hash('s3cret-login')}\n")
    acl.write_text("user vaki-server\ntopic write vaki/v1/d/#\ntopic read vaki/v1/d/+/reading\n")
    private_mosquitto.extra_config = (
        f"allow_anonymous false\npassword_file {passwords}\nacl_file {acl}\n"
    )
    private_mosquitto.start()
    settings.mqtt_url = f"mqtt://vaki-server:s3cret-login@127.0.0.1:{private_mosquitto.port}"
    async with AsyncTestClient(app=create_app(settings)) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503, response.text
        mqtt = response.json()["checks"]["mqtt"]
        assert mqtt["lanes"]["readings"]["ok"] is True
        assert mqtt["lanes"]["alarms"]["ok"] is False
        assert "alarms" in mqtt["detail"]
        # Neither the broker's address nor its login.
        assert str(private_mosquitto.port) not in response.text
        assert "s3cret-login" not in response.text
        assert "mqtt://" not in response.text
    record("silenced alarm lane reported ready", refused=True)
    record("broker address or login in /readyz", refused=True)
