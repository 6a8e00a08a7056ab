"""Every API endpoint and socket × every kind of caller → the expected answer (the roles table in docs/api.md).
Later endpoints and sockets join the tables."""

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse

from accounts.services import api_token_create
from accounts.tests.factories import UserFactory
from sensors.services.device_keys import device_key_create
from sensors.tests.factories import InstallationFactory, PlatformFactory, SensorFactory

pytestmark = pytest.mark.django_db

CALLERS = ["anonymous", "no_role", "viewer", "operator", "staff", "viewer_token", "device_key"]
SENSOR_KEY = "matrix.s-1:a_b"  # the device key's sensor


def _target_id() -> list:
    return [UserFactory.create(email="target@example.com", viewer=True).pk]


def _job(kind: str):
    """A queued job of `kind` (unknown ids answer 404)."""

    def make() -> list:
        from common.models import Job

        return [Job.objects.create(id=f"0b7c4a8e-{kind}", kind=kind, task=kind).pk]

    return make


def _platform() -> list:
    return [PlatformFactory(slug="matrix-p").slug]


def _installation() -> list:
    return [InstallationFactory.create(platform=PlatformFactory(slug="matrix-p")).pk]


def _sensor() -> list:
    return [SENSOR_KEY]


def _anomaly() -> list:
    from detection.tests.factories import AnomalyFactory

    return [AnomalyFactory.create(sensor=SensorFactory(key=SENSOR_KEY)).pk]


def _baseline() -> list:
    from detection.models import Baseline

    # A row as `load_baselines` stores it; its numbers do not matter here (and computing them would load stumpy).
    fields = {"window": 4, "values": b"", "points": 0, "mean": 0.0, "variance": 0.0, "max_distance": 1.0}
    return [Baseline.objects.create(name="matrix-seed", kind=Baseline.Kind.SEED, **fields).pk]


STAFF_ONLY = {
    "anonymous": 401,
    "no_role": 403,
    "viewer": 403,
    "operator": 403,
    "staff": 200,
    "viewer_token": 403,
    "device_key": 403,
}
# Viewers read; device keys read nothing.
READ = {"anonymous": 401, "no_role": 403, "viewer": 200, "operator": 200, "staff": 200, "viewer_token": 200}
READ["device_key"] = 403


def write(status: int) -> dict[str, int]:
    """Operators and staff change the catalogue; device keys only write readings."""
    return {**READ, "viewer": 403, "viewer_token": 403, "operator": status, "staff": status}


# (method, url name, url args (a function making the target), body, {caller: expected status})
ENDPOINTS = [
    (
        "get",
        "accounts-api:user-me",
        None,
        None,
        {
            "anonymous": 401,
            "no_role": 200,
            "viewer": 200,
            "operator": 200,
            "staff": 200,
            "viewer_token": 200,
            "device_key": 403,  # authenticated as a device, not as a user
        },
    ),
    (
        "get",
        "accounts-api:user-list",
        None,
        None,
        STAFF_ONLY,
    ),
    (
        "get",
        "accounts-api:user-detail",
        _target_id,
        None,
        STAFF_ONLY,
    ),
    (
        "post",
        "accounts-api:user-role",
        _target_id,
        {"role": "operator"},
        STAFF_ONLY,
    ),
    (
        "post",
        "accounts-api:token-revoke",
        None,
        None,
        {
            "anonymous": 401,
            "no_role": 401,
            "viewer": 401,
            "operator": 401,
            "staff": 401,
            "viewer_token": 204,
            "device_key": 401,
        },
    ),
    (
        "post",
        "sensors-api:reading-batch",
        None,
        {"sensor": SENSOR_KEY, "value": 1.5, "timestamp": "2024-12-01T12:00:00Z"},
        {**write(201), "device_key": 201},
    ),
    ("get", "sensors-api:readings-latest", None, {"sensor": SENSOR_KEY}, READ),
    ("get", "sensors-api:sensor-readings", _sensor, None, READ),
    ("get", "sensors-api:sensor-readings", _sensor, {"bucket": "1h", "format": "csv"}, READ),
    ("get", "sensors-api:sensor-latest", _sensor, None, READ),
    ("get", "sensors-api:platform-list", None, None, READ),
    ("post", "sensors-api:platform-list", None, {"name": "New", "slug": "new"}, write(201)),
    ("get", "sensors-api:platform-detail", _platform, None, READ),
    ("patch", "sensors-api:platform-detail", _platform, {"description": "changed"}, write(200)),
    ("delete", "sensors-api:platform-detail", _platform, None, write(204)),
    ("get", "sensors-api:installation-list", None, None, READ),
    ("post", "sensors-api:installation-list", None, {"platform": "matrix-p", "name": "M"}, write(201)),
    ("get", "sensors-api:installation-detail", _installation, None, READ),
    ("patch", "sensors-api:installation-detail", _installation, {"height": 3}, write(200)),
    ("delete", "sensors-api:installation-detail", _installation, None, write(204)),
    ("get", "sensors-api:sensor-list", None, None, READ),
    ("post", "sensors-api:sensor-list", None, {"key": "new.sensor", "kind": "gas"}, write(201)),
    ("get", "sensors-api:sensor-detail", _sensor, None, READ),
    ("patch", "sensors-api:sensor-detail", _sensor, {"unit": "ppm"}, write(200)),
    ("delete", "sensors-api:sensor-detail", _sensor, None, write(204)),
    ("get", "rates-api:rate-list", None, None, READ),
    ("get", "rates-api:rate-convert", None, {"from": "EUR", "to": "EUR", "amount": "5"}, READ),
    ("post", "rates-api:rates-update", None, {}, write(202)),
    ("get", "rates-api:job-progress", _job("rates.update_rates"), None, READ),
    ("get", "rates-legacy:rate-list", None, None, READ),
    ("post", "rates-legacy:rates-update", None, {}, write(202)),
    ("get", "detection-api:sensor-detections", _sensor, None, READ),
    ("get", "detection-api:sensor-detections", _sensor, {"status": "warning,critical"}, READ),
    ("get", "detection-api:sensor-detector", _sensor, None, READ),
    ("patch", "detection-api:sensor-detector", _sensor, {"ok_run": 3}, write(200)),
    ("post", "detection-api:sensor-feedback", _sensor, {"enabled": False}, write(200)),
    ("get", "detection-api:anomaly-list", None, {"active": "true"}, READ),
    ("get", "detection-api:anomaly-detail", _anomaly, None, READ),
    ("post", "detection-api:anomaly-acknowledge", _anomaly, {"note": "seen"}, write(200)),
    ("post", "detection-api:anomaly-resolve", _anomaly, {"cause": "external_cause"}, write(200)),
    ("get", "detection-api:sensor-event-list", None, None, READ),
    ("get", "detection-api:system-event-list", None, None, READ),
    ("get", "detection-api:baseline-list", None, None, READ),
    ("get", "detection-api:baseline-detail", _baseline, None, READ),
    ("post", "detection-api:baselines-select", None, {"sensors": [SENSOR_KEY]}, write(202)),
    ("get", "detection-api:job-progress", _job("detection.select_baselines"), None, READ),
]


def client_for(caller: str, api_client):
    if caller == "anonymous":
        return api_client
    if caller == "device_key":
        _, raw = device_key_create(name="matrix device", sensor=SensorFactory(key=SENSOR_KEY))
        api_client.credentials(HTTP_AUTHORIZATION=f"Device {raw}")
        return api_client
    if caller == "viewer_token":
        _, raw = api_token_create(user=UserFactory(viewer=True))
        api_client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
        return api_client
    user = {
        "no_role": lambda: UserFactory(),
        "viewer": lambda: UserFactory(viewer=True),
        "operator": lambda: UserFactory(operator=True),
        "staff": lambda: UserFactory(staff=True),
    }[caller]()
    api_client.force_login(user)
    return api_client


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(
    ("method", "name", "target", "body", "expected"), ENDPOINTS, ids=[f"{e[0]}-{e[1]}" for e in ENDPOINTS]
)
def test_auth_matrix(api_client, caller, method, name, target, body, expected):
    client = client_for(caller, api_client)
    SensorFactory(key=SENSOR_KEY, platform=PlatformFactory(slug="matrix-p"))
    url = reverse(name, args=target() if target else [])
    response = getattr(client, method)(url, body, format="json") if method != "get" else client.get(url, body)
    assert response.status_code == expected[caller], (caller, name, response.content)


# Sockets: "history" when the socket is accepted and sends its history first, else the close code (docs/api.md).
SOCKET_READ = {
    "anonymous": 4401,
    "no_role": 4403,
    "viewer": "history",
    "operator": "history",
    "staff": "history",
    "viewer_token": "history",
    "device_key": 4403,  # device keys write readings and read nothing
}
SOCKETS = [
    (f"/ws/sensors/{SENSOR_KEY}/readings/", SOCKET_READ),
]
# The detection streams: the same rule for every caller.
SOCKETS += [
    (f"/ws/sensors/{SENSOR_KEY}/detections/", SOCKET_READ),
    (f"/ws/sensors/{SENSOR_KEY}/events/", SOCKET_READ),
    ("/ws/events/system/", SOCKET_READ),
]
# The dashboard's summary sockets (dashboard/consumers.py): the readers' rule too.
SOCKETS += [
    ("/ws/dashboard/overview/", SOCKET_READ),
    ("/ws/dashboard/events/", SOCKET_READ),
]


def socket_headers(caller: str, ws_headers) -> list:
    """Browsers bring a session cookie from one of our pages; scripts and devices an Authorization header."""
    SensorFactory(key=SENSOR_KEY, platform=PlatformFactory(slug="matrix-p"))
    if caller == "anonymous":
        return ws_headers()
    if caller == "device_key":
        _, raw = device_key_create(name="matrix device", sensor=SensorFactory(key=SENSOR_KEY))
        return ws_headers(device_key=raw)
    if caller == "viewer_token":
        _, raw = api_token_create(user=UserFactory(viewer=True))
        return ws_headers(token=raw)
    user = {
        "no_role": lambda: UserFactory(),
        "viewer": lambda: UserFactory(viewer=True),
        "operator": lambda: UserFactory(operator=True),
        "staff": lambda: UserFactory(staff=True),
    }[caller]()
    return ws_headers(user=user)


# The consumer reads the database from another thread: the rows must be committed. Serialized rollback, as the
# transactional tests of accounts and rates that run next to it: a plain flush would renumber the content types
# that their restore brings back.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("role_groups")
@pytest.mark.asyncio
@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("path", "expected"), SOCKETS, ids=[s[0] for s in SOCKETS])
async def test_socket_auth_matrix(redis_url, ws_headers, ws_open, caller, path, expected):
    communicator, outcome = await ws_open(path, await sync_to_async(socket_headers)(caller, ws_headers))
    if communicator is not None:
        outcome = outcome["type"]
        await communicator.disconnect()
    assert outcome == expected[caller], (caller, path)


# An account that may not authenticate (here: its address never confirmed, though it has the viewer role) is the
# anonymous caller everywhere, by its session as by a token it got before (accounts.selectors.user_can_authenticate).
def unconfirmed_credentials(credential: str) -> dict:
    """Headers (`ws_headers` keywords) of an unconfirmed viewer's session or token."""
    from allauth.account.models import EmailAddress
    from knox.models import AuthToken

    user = UserFactory(viewer=True, email="unconfirmed@example.com")
    EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=False)
    if credential == "session":
        return {"user": user}
    return {"token": AuthToken.objects.create(user=user)[1]}


@pytest.mark.parametrize("credential", ["session", "token"])
@pytest.mark.parametrize(
    ("method", "name", "target", "body", "expected"), ENDPOINTS, ids=[f"{e[0]}-{e[1]}" for e in ENDPOINTS]
)
def test_unconfirmed_accounts_are_anonymous(api_client, credential, method, name, target, body, expected):
    credentials = unconfirmed_credentials(credential)
    if credential == "session":
        api_client.force_login(credentials["user"])
    else:
        api_client.credentials(HTTP_AUTHORIZATION=f"Token {credentials['token']}")
    SensorFactory(key=SENSOR_KEY, platform=PlatformFactory(slug="matrix-p"))
    url = reverse(name, args=target() if target else [])
    response = getattr(api_client, method)(url, body, format="json") if method != "get" else api_client.get(url, body)
    assert response.status_code == expected["anonymous"], (credential, name, response.content)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("role_groups")
@pytest.mark.asyncio
@pytest.mark.parametrize("credential", ["session", "token"])
@pytest.mark.parametrize(("path", "expected"), SOCKETS, ids=[s[0] for s in SOCKETS])
async def test_unconfirmed_accounts_open_no_socket(redis_url, ws_headers, ws_open, credential, path, expected):
    def headers() -> list:
        SensorFactory(key=SENSOR_KEY, platform=PlatformFactory(slug="matrix-p"))
        return ws_headers(**unconfirmed_credentials(credential))

    communicator, outcome = await ws_open(path, await sync_to_async(headers)())
    if communicator is not None:
        outcome = outcome["type"]
        await communicator.disconnect()
    assert outcome == expected["anonymous"], (credential, path)
