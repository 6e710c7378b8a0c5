"""ETags on the API's reads: a strong ETag from the answer's bytes, and 304 Not Modified when
If-None-Match names it (RFC 9110, section 13.1.2,
https://www.rfc-editor.org/rfc/rfc9110#section-13.1.2). Django's ConditionalGetMiddleware does
exactly this for GET; applied per view, after DRF has rendered the answer."""

from django.middleware.http import ConditionalGetMiddleware
from django.utils.decorators import decorator_from_middleware

etag_on_reads = decorator_from_middleware(ConditionalGetMiddleware)
