# One image for every CodeTrackr service; the command picks the role
# (serve | ingest | api | worker | replay).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY eventlog eventlog
COPY projections projections
COPY processors processors
COPY ingest ingest
COPY api api
COPY accounts accounts
COPY http_edge http_edge
COPY plugins_runtime plugins_runtime
COPY codetrackr codetrackr
RUN pip install --no-cache-dir . && useradd --create-home codetrackr && mkdir /data && chown codetrackr /data
USER codetrackr
ENV CODETRACKR_DATA_DIR=/data CODETRACKR_HOST=0.0.0.0
EXPOSE 8000
ENTRYPOINT ["codetrackr"]
CMD ["serve"]
