# Production image: gunicorn serves the back office; the same image runs migrate, the Celery
# worker, the ACME worker and beat (docker-compose.yml). It runs with the production profile
# (README, "Production"): SECRET_KEY and CERTMGR_ENCRYPTION_KEYS must come from the environment.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    CERTMGR_PRODUCTION=true CERTMGR_VAR_DIR=/var/lib/certmgr
WORKDIR /app
# The production lock (make lock): every version pinned and every file's hash checked. A layer
# of its own, rebuilt only when the lock changes.
COPY requirements/prod.txt requirements/prod.txt
RUN pip install --no-cache-dir --require-hashes -r requirements/prod.txt
COPY pyproject.toml README.md ./
COPY core core
COPY institutions institutions
COPY certificates certificates
COPY saleschannels saleschannels
COPY onboarding onboarding
COPY acme_client acme_client
COPY monitoring monitoring
COPY api api
COPY certmgr certmgr
COPY templates templates
COPY static static
COPY manage.py ./
# The project itself, without dependencies: everything it needs (gunicorn included) came from
# the lock above. collectstatic needs settings to load, and the production profile refuses to
# load without secrets: throwaway ones, for this step only.
RUN pip install --no-cache-dir --no-deps . \
    && SECRET_KEY=collectstatic-only-$(python -c 'import secrets; print(secrets.token_urlsafe(50))') \
       CERTMGR_ENCRYPTION_KEYS=$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())') \
       python manage.py collectstatic --noinput \
    && useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin certmgr \
    && mkdir -p /var/lib/certmgr/edge \
    && chown -R certmgr:certmgr /var/lib/certmgr
# An unprivileged user. It owns /var/lib/certmgr, and so the edge volume that docker creates
# from it: certificates and keys (mode 0600) are written there as this user.
USER certmgr
EXPOSE 8000
CMD ["gunicorn", "certmgr.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
