"""The OpenAPI 3 schema (drf-spectacular) and its documentation page (README, "API").

Every operation may answer with a problem document (api/problems.py): 401 without a usable
token, 403 for a viewer token's write, 404 for anything outside the token's institution, 429
over the token's budget, 400 for a refused input, 409 for a state that refuses the write.
`problem_responses` adds them to each operation, so that the schema tells every answer.

The documentation page is Swagger UI with its assets from drf-spectacular-sidecar, served by
certmgr itself (the Content-Security-Policy allows no CDN), and its settings script served as
a file of its own (SpectacularSwaggerSplitView), since the policy allows no inline script. It
is for logged-in users of the back office; the schema it reads answers them too.
"""

from django.contrib.auth.decorators import login_required
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated

from .authentication import TokenAuthentication
from .problems import PROBLEM_CONTENT_TYPE

PROBLEM_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["type", "title", "status", "detail"],
}
PROBLEMS = {
    "400": "The input was refused: `errors` holds the messages per field.",
    "401": "No usable token (missing, unknown, expired or revoked).",
    "403": "The token's role may not do this (a viewer token's write).",
    "404": "Not found (or another institution's).",
    "409": "The object's state refuses it (e.g. a certificate in use).",
    "413": "The request is over the body size limit (CERTMGR_REQUEST_BODY_MAX_BYTES).",
    "415": "The body's media type is not one this operation takes.",
    "429": "Over the token's request budget: see Retry-After.",
    "503": "The edge files could not be written.",
}


def problem_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: the problem answers of every operation."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    reference = {"$ref": "#/components/schemas/Problem"}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status, description in PROBLEMS.items():
                content = {PROBLEM_CONTENT_TYPE: {"schema": reference}}
                responses.setdefault(status, {"description": description, "content": content})
    return result


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    """The token as the schema declares it: `Authorization: Bearer <token>`."""

    target_class = "api.authentication.TokenAuthentication"
    name = "token"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer"}


class SchemaView(SpectacularAPIView):
    """The schema, for a token or a logged-in user (the documentation page reads it)."""

    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]


class DocsView(SpectacularSwaggerSplitView):
    template_name = "api/docs.html"  # no inline style: the policy allows none
    authentication_classes = []
    permission_classes = [AllowAny]


schema_view = SchemaView.as_view()
docs_view = login_required(DocsView.as_view(url_name="api:schema"))
