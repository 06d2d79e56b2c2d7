"""The public surface is pinned: a name added or removed from `happ_integ` is a deliberate change."""

import happ_integ

EXPECTED = {
    "OUTCOMES",
    "BearerAuth",
    "CallAnalysis",
    "CallFlow",
    "CallHandling",
    "CallingHours",
    "Conflict",
    "Context",
    "Dedup",
    "DependencyUnavailable",
    "ElevenLabsAuth",
    "Forbidden",
    "HandlerDefinition",
    "HandlerDefinitionError",
    "HappError",
    "Integration",
    "LookupPayload",
    "LookupResult",
    "Migration",
    "NonRetryableError",
    "NotFound",
    "OpenAPIOptions",
    "PostcallPayload",
    "RateLimit",
    "RetryableError",
    "Scheduled",
    "SecretMissing",
    "SecretRef",
    "Secrets",
    "Settings",
    "Unauthorized",
    "UpstreamError",
    "UpstreamRejected",
    "ValidationFailed",
    "current",
    "define_handler",
    "discover_integrations",
    "handler_definition",
    "handlers_from",
    "mask_phone",
    "normalize_phone",
}


def test_exported_names_are_pinned() -> None:
    assert set(happ_integ.__all__) == EXPECTED
    assert all(hasattr(happ_integ, name) for name in happ_integ.__all__)


def test_current_outside_a_handler_says_so() -> None:
    import pytest

    with pytest.raises(RuntimeError, match="only inside a handler"):
        happ_integ.current()


def test_the_testing_harness_exports_are_pinned() -> None:
    import happ_integ.testing

    assert set(happ_integ.testing.__all__) == {"DEMO", "Demo", "IntegrationTestEnv"}
    assert all(hasattr(happ_integ.testing, name) for name in happ_integ.testing.__all__)
