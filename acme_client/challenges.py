"""Pending HTTP-01 challenges, kept in the database so that whichever web process the CA
reaches answers them (acme_client/views.py), for real orders and the pre-flight self-check
alike."""

from datetime import timedelta

from django.utils import timezone

from .models import AcmeChallenge

CHALLENGE_LIFETIME = timedelta(hours=1)


def challenge_publish(*, hostname: str, token: str, key_authorization: str) -> None:
    AcmeChallenge.objects.update_or_create(
        token=token,
        defaults={
            "hostname": hostname,
            "key_authorization": key_authorization,
            "expires_at": timezone.now() + CHALLENGE_LIFETIME,
        },
    )


def challenge_withdraw(*, token: str) -> None:
    AcmeChallenge.objects.filter(token=token).delete()


def challenge_answer(*, hostname: str, token: str) -> str | None:
    """The key authorization for a pending challenge of this hostname, or None."""
    return (
        AcmeChallenge.objects.filter(token=token, hostname=hostname, expires_at__gt=timezone.now())
        .values_list("key_authorization", flat=True)
        .first()
    )
