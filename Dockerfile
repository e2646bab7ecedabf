# cspulse worker image: `docker build -t cspulse .`
# Default command is `cspulse worker`; any other subcommand works too, e.g.
# `docker run --rm cspulse topics create --partitions 8`.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- build: install cspulse and its dependencies into a virtualenv -----------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/cspulse
WORKDIR /src
# Dependencies first, in their own layer: a change to the sources alone reuses it.
# Only [project] dependencies: the embedded broker and Redis (cspulse[embedded])
# are for `cspulse run` on a laptop and stay out of the image.
# constraints.txt pins the versions the test suite ran with (scripts/lock).
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && /opt/cspulse/bin/pip install -c constraints.txt -r requirements.txt
COPY README.md ./
COPY schemas ./schemas
COPY aggregators ./aggregators
COPY streams ./streams
RUN /opt/cspulse/bin/pip install --no-deps .

# --- runtime: the virtualenv only, run as an unprivileged user ---------------
FROM ${PYTHON_IMAGE}

ENV PATH=/opt/cspulse/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN groupadd --system --gid 10001 cspulse \
 && useradd --system --uid 10001 --gid cspulse --create-home --home-dir /home/cspulse \
      --shell /usr/sbin/nologin cspulse

COPY --from=build /opt/cspulse /opt/cspulse

USER 10001:10001
WORKDIR /home/cspulse

# /metrics, /healthz, /readyz, /accounts/at-risk
EXPOSE 9464

# Liveness: the HTTP endpoint answers (/healthz needs no credentials). No curl in
# slim images, so Python's urllib; over https when the web config enables TLS
# (the certificate is not checked: this is the container talking to itself).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, ssl, urllib.request as u; c = os.environ.get('CSPULSE_WEB_CONFIG_FILE'); tls = bool(c) and b'tls_server_config' in open(c, 'rb').read(); u.urlopen(('https' if tls else 'http') + '://127.0.0.1:%s/healthz' % os.environ.get('CSPULSE_METRICS_PORT', '9464'), timeout=4, context=ssl._create_unverified_context() if tls else None)"]

ENTRYPOINT ["cspulse"]
CMD ["worker"]
