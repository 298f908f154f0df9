# syntax=docker/dockerfile:1
# Multi-stage build: wheels are built with compilers in the first stage; the runtime stage
# has only the shared libraries the node needs (TPM TSS, SoftHSM client) and runs as a
# non-root user. Entry point: `qenex node start`.

FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libtss2-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY qenex_node ./qenex_node
COPY consensus ./consensus
COPY crypto ./crypto
COPY ledger ./ledger
COPY proto ./proto
COPY simulations ./simulations
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[tpm,hsm]'

FROM python:3.11-slim-bookworm AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends libtss2-esys-3.0.2-0 libtss2-tctildr0 \
        libtss2-tcti-device0 libtss2-tcti-swtpm0 libtss2-fapi1 softhsm2 curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 qenex \
 && useradd --system --uid 10001 --gid qenex --home-dir /var/lib/qenex --create-home qenex
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY configs /etc/qenex/examples
USER qenex
WORKDIR /var/lib/qenex
# gRPC, peer, metrics, REST (configs/node.example.yaml; override in node.yaml)
EXPOSE 26650 26656 26660 26670
VOLUME ["/var/lib/qenex"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS http://127.0.0.1:26660/ready || exit 1
ENTRYPOINT ["qenex", "node", "start"]
CMD ["--home", "/var/lib/qenex"]
