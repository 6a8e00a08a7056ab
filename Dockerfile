# Sensorhub production image: one image for web (daphne), worker, beat and the one-shot migrate.
# Configuration comes from the environment at run time (see .env.example); nothing secret is baked in.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.prod

# The processes run as this user; the code below stays owned by root, so they cannot rewrite it.
RUN groupadd --system --gid 1000 app \
    && useradd --system --uid 1000 --gid app --create-home --home-dir /home/app app

WORKDIR /app

# Dependencies first so that code changes reuse this layer. psycopg[binary] ships wheels: no compiler needed.
COPY requirements/ requirements/
RUN pip install --no-cache-dir -r requirements/prod.txt

COPY . .

# stumpy's functions are compiled once here into var/numba (the default NUMBA_CACHE_DIR), so that workers load
# them in seconds instead of compiling them for about 25 s each (docs/detection.md, "Compilation").
# collectstatic imports the production settings, which require these variables. The values are throwaway and
# given to this one RUN only (never ENV), so they do not stay in the image's environment. Nothing connects to the
# database or to Redis here; REDIS_URL only keeps base.py from creating the filesystem broker's folders.
RUN DJANGO_SECRET_KEY=collectstatic-build-only \
    DATABASE_URL=sqlite://:memory: \
    DJANGO_ALLOWED_HOSTS=localhost \
    REDIS_URL=redis://127.0.0.1:6379/0 \
    python manage.py collectstatic --noinput \
    && mkdir -p var/archive \
    && NUMBA_CACHE_DIR=var/numba python -c "from detection import engine; engine.warm()" \
    && chown -R app:app var

USER app

EXPOSE 8000

# /healthcheck/live answers while the process serves HTTP, whatever the state of PostgreSQL or Redis. Production
# settings always allow Host 127.0.0.1 and exempt ^healthcheck from the SSL redirect. Worker and beat containers
# use the same image: docker-compose.yml gives them their own check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", \
         "import urllib.request as r; r.urlopen('http://127.0.0.1:8000/healthcheck/live', timeout=4)"]

# daphne with the request body cap (config/server.py); its options are daphne's.
CMD ["python", "-m", "config.server", "-b", "0.0.0.0", "-p", "8000", "config.asgi:application"]
