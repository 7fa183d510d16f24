# One image for every CodeTrackr service; the command picks the role
# (serve | ingest | api | worker | replay).
# tests/unit/test_compose.py checks this file against pyproject.toml; run it after editing.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, in their own layer: a source change does not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Every top-level package of [tool.setuptools].packages.
COPY schemas schemas
COPY eventlog eventlog
COPY projections projections
COPY processors processors
COPY ingest ingest
COPY api api
COPY accounts accounts
COPY http_edge http_edge
COPY plugins_runtime plugins_runtime
COPY plugin_host plugin_host
COPY live live
COPY codetrackr codetrackr
COPY web web
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 codetrackr \
    && mkdir /data && chown codetrackr /data

USER codetrackr
ENV CODETRACKR_DATA_DIR=/data CODETRACKR_HOST=0.0.0.0
EXPOSE 8000
ENTRYPOINT ["codetrackr"]
CMD ["serve"]
