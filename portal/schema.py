"""The OpenAPI schema documents the API's refusals, not only its successes.

drf-spectacular describes the answer a view gives when all goes well; a client (and the fuzz test,
tests/portal/test_api_schemathesis.py) also meets 400, 401, 403 and 404, which DRF and our services
give to every operation that can meet their cause. ``PortalAutoSchema`` adds them where they can
happen, with their bodies, unless a view declared that code itself (the upload chunk's 409, the
verification's 413 and 429):

- 400 ``ValidationError``: operations with a query parameter or a request body, and every write
  (services refuse a state change with a message: submitting twice, deciding a decided finding);
  the body names each field with its messages, ``detail`` when no field is to blame.
- 401: every operation that needs a signed-in caller (``Authorization: Token …`` or a session).
- 403: the same operations: a role that may read but not write, and a session still owing its
  second factor (portal.middleware.SecondFactorMiddleware) or its CSRF token.
- 404: operations with a path parameter (missing and forbidden objects answer the same), paginated
  lists (a page past the last), and signed-in writes (they name objects by id, looked up in the
  caller's scope).
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

ApiErrorSerializer = inline_serializer("ApiError", {"detail": serializers.CharField()})

# DRF's validation answer: each field (or "detail", "non_field_errors") with a list of messages, nested
# for list and dict fields (``{"base_models": {"0": {"name": ["…"]}}}``).
VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "description": "Each field in error with its messages (`detail` or `non_field_errors` when no field is to blame).",
    "additionalProperties": {},
}


class PortalAutoSchema(AutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        unsafe = self.method not in SAFE_METHODS
        parameters = operation.get("parameters", [])
        has_query = any(p["in"] == "query" for p in parameters)
        has_path = any(p["in"] == "path" for p in parameters)
        paginated = any(p["in"] == "query" and p["name"] == "page" for p in parameters)
        needs_sign_in = not any(isinstance(p, AllowAny) for p in self.view.get_permissions())

        errors = {}
        if unsafe or has_query or "requestBody" in operation:
            errors["400"] = (VALIDATION_ERROR_SCHEMA, "The request is not valid: see each field's messages.")
        if needs_sign_in:
            errors["401"] = (ApiErrorSerializer, "No valid credentials: send `Authorization: Token <secret>`.")
            errors["403"] = (ApiErrorSerializer, "Your role may not do this (or your session owes its second "
                                                 "factor or CSRF token).")
        if has_path or paginated or (unsafe and needs_sign_in):
            errors["404"] = (ApiErrorSerializer, "Not found, or not yours: both answer the same.")
        for code, (body, description) in errors.items():
            if code not in responses:
                # JSON even where the success is CSV or XLSX (exports): DRF renders errors as JSON.
                response = self._get_response_for_code(body, code, media_types=["application/json"])
                response["description"] = description
                responses[code] = response
        return operation
