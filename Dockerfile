# The workbench: the pinned Python 3.11 set (requirements.lock: TensorFlow, TFDV, TFMA, ...),
# the package, headless Chromium for the PDF reports. Data is mounted, never copied:
#
#   podman build -t face-sentiment-workbench .          (or docker build; see README)
#   podman run --rm -v /path/to/data:/data -v "$PWD/reports:/workbench/reports" \
#       face-sentiment-workbench                        # make reports
#   podman run --rm -v /path/to/data:/data face-sentiment-workbench make test
#
# It runs as `workbench`, uid/gid 1000 (a Linux host's first user), so what it writes to a bind
# mount is that user's: with Docker or rootful Podman as uid 1000 as is; rootless Podman:
# --userns=keep-id:uid=1000,gid=1000 (the host user is 1000 inside); another host uid: build
# with --build-arg WORKBENCH_UID=$(id -u) --build-arg WORKBENCH_GID=$(id -g).
# /data is the workbench's data/raw: files named as in the README's Data table are found
# there, or set the same variables as outside (-e FER2013_PATH=/data/fer2013.csv.gz, ...).
# Base image: debian:bookworm-slim (Python 3.11.2); without a registry,
# containers/podman.sh base makes it from Debian's packages with debootstrap.
FROM debian:bookworm-slim

ARG DEBIAN_FRONTEND=noninteractive
# g++ and python3-dev: a few pins of the lock are source-only (pyfarmhash, ...).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev g++ make \
      ca-certificates chromium fonts-dejavu-core libglib2.0-0 git \
 && rm -rf /var/lib/apt/lists/*

# Extra CA certificates (containers/certs/*.crt; an intercepting proxy) for pip and uv.
COPY containers/certs/ /usr/local/share/ca-certificates/extra/
RUN update-ca-certificates >/dev/null
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    UV_NATIVE_TLS=1 UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy UV_NO_CACHE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 LANG=C.UTF-8

RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --quiet uv==0.13.9 \
 && ln -s /opt/uv/bin/uv /usr/local/bin/uv

WORKDIR /workbench
# The lock first: its layer (the slow one) is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN uv venv --quiet --python /usr/bin/python3.11 .venv \
 && uv pip install --quiet --python .venv/bin/python -r requirements.lock

# After the lock's layer, so another uid does not reinstall it; the venv stays root's (read
# only to the user; `make setup` is not rerun: its stamp is newer than the lock).
ARG WORKBENCH_UID=1000
ARG WORKBENCH_GID=1000
RUN groupadd --gid "$WORKBENCH_GID" workbench \
 && useradd --uid "$WORKBENCH_UID" --gid workbench --create-home --shell /bin/bash workbench

COPY --chown=workbench:workbench . .
# make setup's stamp: the venv is the lock's, so `make` does not reinstall it. The folders the
# workbench writes (data, reports, runs, build; none is in the build context) are the user's.
RUN uv pip install --quiet --python .venv/bin/python --no-deps -e . \
 && touch .venv/.installed \
 && mkdir -p data/interim data/processed data/external reports runs build \
 && rm -rf data/raw && ln -s /data data/raw && mkdir -p /data \
 && chown -R workbench:workbench data reports runs build
ENV PATH=/workbench/.venv/bin:$PATH
USER workbench
VOLUME ["/data"]
# No HEALTHCHECK: the workbench runs jobs (make reports, make test) that end, not a service.
# The commit built (containers/podman.sh: `git rev-parse --short HEAD`, "-dirty" when tracked
# files differ): .git is not in the build context, and the reports print this instead
# (reports.git_commit). Last: a new commit changes metadata only.
ARG FACE_SENTIMENT_COMMIT=unknown
ENV FACE_SENTIMENT_COMMIT=$FACE_SENTIMENT_COMMIT
LABEL org.opencontainers.image.revision=$FACE_SENTIMENT_COMMIT
CMD ["make", "reports"]
