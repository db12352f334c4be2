# detectkd container image.
#   docker build -t detectkd .
#   docker run -d -p 9100:9100 -v /etc/detectk:/etc/detectk:ro -v detectk-data:/var/lib/detectk detectkd
# Configs are mounted at /etc/detectk (detectkd.yaml, profiles.yaml, metrics.d/); the SQLite
# store lives in the /var/lib/detectk volume. Reload: docker kill --signal=HUP <container>.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY detectkd ./detectkd
RUN python -m venv /opt/detectkd \
    && /opt/detectkd/bin/pip install --no-compile .

FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 detectk \
    && useradd --system --uid 10001 --gid detectk --home-dir /var/lib/detectk --shell /usr/sbin/nologin detectk \
    && mkdir -p /etc/detectk/metrics.d /var/lib/detectk \
    && chown detectk:detectk /var/lib/detectk
COPY --from=build /opt/detectkd /opt/detectkd
ENV PATH=/opt/detectkd/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /var/lib/detectk
VOLUME ["/var/lib/detectk"]
EXPOSE 9100
HEALTHCHECK --interval=30s --timeout=5s --start-period=2m --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/healthz', timeout=4); sys.exit(0)"]
ENTRYPOINT ["detectkd"]
CMD ["run"]
