"""The served OpenAPI document and the app's routes match, both ways."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from carebridge.gateway.server.app import create_app
from carebridge.gateway.server.settings import load

from .conftest import DB_BACKENDS, Gateway, GatewayFactory

METHODS = {"get", "put", "post", "delete", "patch", "options", "trace"}


def app_routes(tmp_path: Path) -> set[tuple[str, str]]:
    app = create_app(load(overrides={"data_dir": tmp_path}))
    routes = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        routes.add((route.resource.canonical, route.method.lower()))
    return routes


def documented(document: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items() for method in item if method in METHODS}


@pytest.fixture
async def served(gateway_factory: GatewayFactory) -> tuple[Gateway, dict]:
    gw = await gateway_factory()
    reply = await gw.request("GET", "/api/v1/openapi.json")
    assert reply.status == 200 and reply.content_type == "application/json"
    return gw, reply.json()


@pytest.mark.parametrize("backend", DB_BACKENDS[:1], indirect=True)
async def test_every_route_is_documented_and_every_documented_route_exists(
        served: tuple[Gateway, dict], tmp_path: Path) -> None:
    _, document = served
    routes = app_routes(tmp_path / "fresh")
    assert ("/api/v1/documents", "post") in routes  # the walk found the real routes
    assert routes - documented(document) == set(), "routes missing from openapi.json"
    assert documented(document) - routes == set(), "openapi.json documents routes the app lacks"


@pytest.mark.parametrize("backend", DB_BACKENDS[:1], indirect=True)
async def test_document_is_valid_openapi_31(served: tuple[Gateway, dict]) -> None:
    _, document = served
    assert document["openapi"].startswith("3.1.")
    for key in ("info", "paths"):
        assert key in document
    assert {"title", "version"} <= set(document["info"])
    if importlib.util.find_spec("openapi_spec_validator") is None:
        return  # the structural checks above are all there is without the validator
    from openapi_spec_validator import OpenAPIV31SpecValidator, validate
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    validate(document, cls=OpenAPIV31SpecValidator)
    # the validator does reject a broken document (so its silence means something)
    with pytest.raises(OpenAPIValidationError):
        validate({**document, "info": {**document["info"], "title": 1}}, cls=OpenAPIV31SpecValidator)


@pytest.mark.parametrize("backend", DB_BACKENDS[:1], indirect=True)
async def test_operations_document_auth_and_problems(served: tuple[Gateway, dict]) -> None:
    _, document = served
    # the link page, the web app's assets, release, key page and send page (a shell: what it sends
    # will need a token) need no token; nor do sign-in and enrollment (they are how a person gets a
    # session: the password or the enrollment link is the credential)
    public = {"/api/v1/health", "/api/v1/openapi.json", "/l/{token}", "/api/v1/web/release", "/app/{name}",
              "/keys/new", "/send", "/api/v1/auth/signin", "/api/v1/auth/enrollment",
              "/api/v1/auth/enrollment/complete", "/", "/signin", "/enroll", "/sessions", "/audit", "/outbox", "/inbox", "/cases",
              "/healthz", "/readyz", "/metrics"}  # operations: /metrics checks its own scrape token
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    for path, item in document["paths"].items():
        for method, op in item.items():
            if path in public:
                assert op.get("security") == [], (path, method)
                continue
            assert "401" in op["responses"], (path, method)
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    assert "application/problem+json" in response["content"], (path, method, status)
            for name in {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}:
                assert "{" + name + "}" in path
