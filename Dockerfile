# The workbench: the pinned Python 3.11 set (requirements.lock: TensorFlow, TFDV, TFMA, ...),
# the package, headless Chromium for the PDF reports. Data is mounted, never copied:
#
#   podman build -t face-sentiment-workbench .          (or docker build; see README)
#   podman run --rm -v /path/to/data:/data -v "$PWD/reports:/workbench/reports" \
#       face-sentiment-workbench                        # make reports
#   podman run --rm -v /path/to/data:/data face-sentiment-workbench make test
#
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

COPY . .
# make setup's stamp: the venv is the lock's, so `make` does not reinstall it.
RUN uv pip install --quiet --python .venv/bin/python --no-deps -e . \
 && touch .venv/.installed \
 && mkdir -p data/interim data/processed data/external \
 && rm -rf data/raw && ln -s /data data/raw && mkdir -p /data reports
ENV PATH=/workbench/.venv/bin:$PATH
VOLUME ["/data"]
CMD ["make", "reports"]
