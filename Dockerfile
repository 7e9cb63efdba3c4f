# reason-classifier: the classify service with the default model inside, CPU only, as a non-root user.
#
#   docker build -t reason-classifier .
#   docker run -p 8000:8000 -e REASON_CLASSIFIER_SERVICE_STORE=postgresql://... reason-classifier
#
# The build steps are one script, docker/build.sh, which .ci/dockerfile_steps.py runs outside a container;
# docs/deployment.md says what that checks and what it does not.

FROM python:3.11-slim-bookworm AS build
ARG EXTRAS=serve,trends
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
WORKDIR /src
COPY pyproject.toml README.md ./
COPY reason_classifier reason_classifier
COPY training training
COPY service service
COPY cli cli
COPY docker/build.sh docker/build.sh
RUN PREFIX=/opt/reason-classifier SOURCE=/src EXTRAS="$EXTRAS" TORCH_INDEX_URL="$TORCH_INDEX_URL" sh docker/build.sh

FROM python:3.11-slim-bookworm
COPY --from=build /opt/reason-classifier /opt/reason-classifier
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/reason-classifier --create-home reason \
    && mkdir -p /var/lib/reason-classifier/spool && chown -R reason:reason /var/lib/reason-classifier
ENV PATH=/opt/reason-classifier/venv/bin:$PATH \
    REASON_CLASSIFIER_CACHE=/opt/reason-classifier/cache \
    REASON_CLASSIFIER_SERVICE_STORE_SPOOL=/var/lib/reason-classifier/spool \
    HF_HUB_OFFLINE=1 \
    PYTHONUNBUFFERED=1
USER reason
WORKDIR /var/lib/reason-classifier
# The spool: answers on their way to the database (see docs/service.md); keep it on a volume.
VOLUME ["/var/lib/reason-classifier/spool"]
EXPOSE 8000
# Ready = the model is loaded and warmed and the store can be written (or spools); not merely alive.
HEALTHCHECK --interval=15s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]
ENTRYPOINT ["reason-classifier"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
