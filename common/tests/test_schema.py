"""The OpenAPI schema tells the truth: valid, tagged by area, and each operation lists its error answers with the
one error body (common/schema.py)."""

import pytest
from django.conf import settings
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
ERROR_REF = "#/components/schemas/Error"
# Outside the DRF API (no authentication, throttles or error body), added by the `health_paths` hook.
PLAIN_DJANGO_PATHS = {"/healthcheck", "/healthcheck/live"}


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def test_the_schema_validates(schema):
    validate_schema(schema)


def test_every_operation_has_one_declared_area_tag(schema):
    declared = {tag["name"] for tag in settings.SPECTACULAR_SETTINGS["TAGS"]}
    assert declared == {tag["name"] for tag in schema["tags"]}
    used = set()
    for path, method, operation in operations(schema):
        assert len(operation["tags"]) == 1, (method, path)
        assert operation["tags"][0] in declared - {"api"}, (method, path)
        used |= set(operation["tags"])
    assert used == declared


@pytest.mark.parametrize(
    ("method", "path", "tag"),
    [
        ("post", "/api/v1/auth/token/", "auth"),
        ("get", "/api/v1/users/me/", "accounts"),
        ("get", "/api/v1/sensors/", "sensors"),
        ("post", "/api/v1/readings/", "readings"),
        ("get", "/api/v1/sensors/{key}/readings/", "readings"),
        ("get", "/api/v1/sensors/{key}/detections/", "detection"),
        ("get", "/v1/rates", "rates"),
        ("get", "/healthcheck", "health"),
    ],
)
def test_operations_are_tagged_by_area(schema, method, path, tag):
    assert schema["paths"][path][method]["tags"] == [tag]


def test_every_operation_documents_the_errors_it_can_answer(schema):
    for path, method, operation in operations(schema):
        if path in PLAIN_DJANGO_PATHS:
            continue
        responses = operation["responses"]
        where = (method, path)
        assert "401" in responses, where  # the token endpoint's own: invalid_credentials
        if path not in {"/api/v1/auth/token/", "/api/v1/auth/token/revoke/"}:
            assert "403" in responses, where
        if "{" in path:
            assert "404" in responses, where
        assert "400" in responses, where  # a NUL in any parameter, even one it does not take (common.inputs)
        assert "429" in responses, where
        for code, response in responses.items():
            if code.startswith(("4", "5")):
                assert response["content"]["application/json"]["schema"] == {"$ref": ERROR_REF}, (code, *where)


@pytest.mark.parametrize(
    ("method", "path", "codes"),
    [
        # 413: a body over the cap (any operation taking one); 414: a request line over 16 KiB (every operation).
        ("post", "/api/v1/auth/token/", {"201", "400", "401", "403", "413", "414", "429"}),  # 403: account_unusable
        ("post", "/api/v1/auth/token/revoke/", {"204", "400", "401", "413", "414", "429"}),
        ("get", "/api/v1/platforms/", {"200", "400", "401", "403", "404", "414", "429"}),  # 400: a NUL in `search`
        (
            "post",
            "/api/v1/anomalies/{anomaly_id}/acknowledge/",
            {"200", "400", "401", "403", "404", "409", "413", "414", "429"},
        ),
        ("get", "/api/v1/rates/convert/", {"200", "400", "401", "403", "404", "414", "429"}),
    ],
)
def test_error_statuses_follow_the_view(schema, method, path, codes):
    assert set(schema["paths"][path][method]["responses"]) == codes


def test_the_error_body_is_the_exception_handlers(schema):
    error = schema["components"]["schemas"]["Error"]
    assert set(error["properties"]) == {"error", "detail", "fields"}
    assert set(error["required"]) == {"error", "detail", "fields"}


def test_filters_of_an_apiview_come_from_its_filterset(schema):
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/anomalies/"]["get"]["parameters"]}
    assert {"sensor", "status", "active", "since", "until", "page", "page_size"} <= set(parameters)
    assert parameters["status"]["schema"]["type"] == "array"
    assert parameters["status"]["explode"] is False
    assert parameters["since"]["schema"]["format"] == "date-time"


def test_the_readings_body_is_required_and_its_list_bounded(schema):
    from django.conf import settings

    body = schema["paths"]["/api/v1/readings/"]["post"]["requestBody"]
    assert body["required"] is True  # an empty body is refused
    shapes = schema["components"]["schemas"]["ReadingBatchRequest"]["oneOf"]
    (listed,) = [shape for shape in shapes if shape.get("type") == "array"]
    assert listed["minItems"] == 1
    assert listed["maxItems"] == settings.SENSORS_REST_MAX_BATCH


def _parameter(schema, path, name, method="get"):
    (found,) = [p for p in schema["paths"][path][method]["parameters"] if p["name"] == name]
    return found["schema"]


def test_currency_codes_have_their_pattern_in_parameters_and_answers(schema):
    # Inputs are read case-insensitively (`kes` is KES); answers are upper case.
    for path, name in [
        ("/api/v1/rates/", "base"),
        ("/api/v1/rates/", "quote"),
        ("/api/v1/rates/convert/", "from"),
        ("/api/v1/rates/convert/", "to"),
        ("/v1/rates", "currency"),
    ]:
        assert _parameter(schema, path, name)["pattern"] == "^[A-Za-z]{3}$", (path, name)
    components = schema["components"]["schemas"]
    for component, field in [
        ("Rate", "base"),
        ("Rate", "quote"),
        ("RateConvertOutput", "from"),
        ("RateConvertOutput", "to"),
        ("RateConvertOutput", "via"),
        ("LegacyRate", "currency"),
        ("LegacyRateListOutput", "base"),
    ]:
        assert components[component]["properties"][field]["pattern"] == "^[A-Z]{3}$", (component, field)


def test_numbers_state_their_bounds(schema):
    amount = _parameter(schema, "/api/v1/rates/convert/", "amount")
    assert amount["type"] == "string"
    assert amount["pattern"] == r"^-?[0-9]{1,18}(\.[0-9]{1,18})?$"
    installation = _parameter(schema, "/api/v1/sensors/", "installation")
    assert installation == {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
    detector = schema["components"]["schemas"]["PatchedDetectorSettingsRequest"]["properties"]
    assert detector["window"]["minimum"] == 4
    assert detector["ok_run"]["minimum"] == 1
    for level in ["warning_level", "critical_level"]:
        assert (detector[level]["minimum"], detector[level]["exclusiveMinimum"]) == (0, True)


def test_filter_parameters_have_their_types(schema):
    for path, name, kind in [
        ("/api/v1/sensors/", "active", "boolean"),
        ("/api/v1/sensors/", "installation", "integer"),
        ("/api/v1/anomalies/", "active", "boolean"),
        ("/api/v1/users/", "is_active", "boolean"),
        ("/api/v1/sensors/{key}/detections/", "min_level", "number"),
    ]:
        assert _parameter(schema, path, name)["type"] == kind, (path, name)
    for path, name in [("/api/v1/anomalies/", "since"), ("/api/v1/sensors/{key}/readings/", "start")]:
        assert _parameter(schema, path, name)["format"] == "date-time", (path, name)


def test_a_reading_in_a_body_says_what_it_takes(schema):
    reading = schema["components"]["schemas"]["ReadingInRequest"]["properties"]
    assert reading["sensor"]["pattern"].startswith("^[A-Za-z0-9]")
    assert reading["sensor"]["maxLength"] == 100
    assert reading["timestamp"]["format"] == "date-time"


def test_the_latest_of_many_takes_no_blank_values(schema):
    assert _parameter(schema, "/api/v1/readings/latest/", "platform")["minLength"] == 1
    sensors = _parameter(schema, "/api/v1/readings/latest/", "sensor")
    assert sensors["items"]["minLength"] == 1
    assert sensors["maxItems"] == 1000


def _strings(schema_part, where):
    """Every string schema (with where it is) inside a parameter's or a request component's schema."""
    if schema_part.get("type") == "string" and "enum" not in schema_part:
        yield where, schema_part
    if schema_part.get("type") == "array":
        yield from _strings(schema_part["items"], (*where, "items"))
    for name, prop in schema_part.get("properties", {}).items():
        if not prop.get("readOnly"):
            yield from _strings(prop, (*where, name))


def test_no_string_the_api_takes_allows_a_nul_character(schema):
    # The server refuses NUL in every parameter (common.inputs) and in every body text (DRF's CharField): a string
    # valid per schema must not be refused for it, so each string's pattern excludes it.
    import re

    found = 0
    for path, method, operation in operations(schema):
        if path in PLAIN_DJANGO_PATHS:
            continue
        for parameter in operation.get("parameters", []):
            for where, string in _strings(parameter["schema"], (method, path, parameter["name"])):
                assert re.search(string.get("pattern", ""), "a\x00b") is None, where
                found += 1
    for name, component in schema["components"]["schemas"].items():
        if name.endswith("Request"):
            for where, string in _strings(component, (name,)):
                if string.get("format") in {"date-time", "date", "email", "uri"}:
                    continue  # a NUL is no part of these formats
                assert re.search(string.get("pattern", ""), "a\x00b") is None, where
                found += 1
    assert found > 50


def test_lists_and_levels_state_their_bounds(schema):
    sensors = schema["components"]["schemas"]["BaselinesSelectRequest"]["properties"]["sensors"]
    assert (sensors["minItems"], sensors["maxItems"]) == (1, 10_000)
    level = _parameter(schema, "/api/v1/sensors/{key}/detections/", "min_level")
    assert (level["type"], level["maximum"]) == ("number", 1e50)  # django-filter's bound


def test_an_installations_porosity_is_described(schema):
    porosity = schema["components"]["schemas"]["InstallationRequest"]["properties"]["porosity"]
    assert porosity["type"] == "object"
    assert porosity["additionalProperties"] is False
    assert set(porosity["properties"]) == {"north", "east", "south", "west", "top", "bottom"}
    assert porosity["properties"]["top"] == {"type": "number", "minimum": 0, "maximum": 1}
