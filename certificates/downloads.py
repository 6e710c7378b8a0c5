"""What the download of a certificate or of a CSR gives, for the pages and the API alike:
public material only, never a key.

- an SSL or Apple Pay certificate: the certificate followed by its chain (PEM), named after
  the certificate (`<name>.pem`); None when it could not be read (no PEM to give);
- an Apple Pay identity proof: its file exactly as uploaded (public by nature: every shop
  serves it);
- a key-and-CSR request: the CSR (PEM) as the `.certSigningRequest` Apple's portal takes.
"""

from django.http import HttpResponse

from . import apple
from .models import Certificate, CertificateRequest

PEM_CONTENT_TYPE = "application/x-pem-file"
NO_PEM_MESSAGE = "This certificate could not be read, so there is no PEM to download."


def attachment(content, *, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def certificate_download_response(certificate: Certificate) -> HttpResponse | None:
    """The download of `certificate`, or None when there is no PEM to give."""
    if certificate.kind == Certificate.Kind.APPLE_IDENTITY_PROOF:
        return attachment(
            bytes(certificate.content),
            content_type="text/plain",
            filename="apple-developer-merchantid-domain-association",
        )
    if not certificate.certificate_pem:
        return None
    filename = "".join(c if c.isalnum() or c in "-_." else "_" for c in certificate.name)
    return attachment(
        certificate.public_bundle_pem(),
        content_type=PEM_CONTENT_TYPE,
        filename=f"{filename or 'certificate'}.pem",
    )


def csr_download_response(request: CertificateRequest) -> HttpResponse:
    return attachment(
        request.csr_pem,
        content_type="application/pkcs10",
        filename=apple.csr_filename(request.merchant_identifier),
    )
