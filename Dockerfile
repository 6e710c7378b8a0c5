# Production image: gunicorn serves the back office; the same image runs the Celery worker.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 CERTMGR_VAR_DIR=/var/lib/certmgr
WORKDIR /app
COPY pyproject.toml README.md ./
COPY certmgr certmgr
COPY institutions institutions
COPY saleschannels saleschannels
COPY acme_client acme_client
COPY templates templates
COPY static static
COPY manage.py ./
RUN pip install --no-cache-dir . gunicorn \
    && SECRET_KEY=build CERTMGR_ENCRYPTION_KEYS=$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())') \
       python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["gunicorn", "certmgr.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
