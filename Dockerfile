# syntax=docker/dockerfile:1
#
# One image for every role of pixelmill, chosen by the command (docs/deploy.md):
#   docker run IMAGE                                   the API and one worker (SQLite, /data)
#   docker run IMAGE serve --host 0.0.0.0 --workers 0  the API alone, on a shared --db
#   docker run IMAGE worker --metrics-port 9100        a worker alone
#   docker run IMAGE batch SRC DST -p PIPELINE         a batch driver (build with EXTRAS=s3,postgres,ray for --engine ray)
#
# libvips comes from the pyvips-binary wheel and the bundled models ship inside the package
# (src/pixelmill/models/bundled/), so the runtime stage needs no system library beyond Python's.

ARG PYTHON=3.11

# --- build: the wheel of this checkout ---
FROM python:${PYTHON}-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# --- runtime: the wheel and its extras in a virtual environment, run by a user without rights ---
FROM python:${PYTHON}-slim AS runtime
ARG EXTRAS=s3,postgres
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PIXELMILL_DATA_DIR=/data
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir "$(ls /wheels/pixelmill-*.whl)[${EXTRAS}]" \
    && echo 'export PATH=/opt/venv/bin:$PATH' > /etc/profile.d/pixelmill-venv.sh \
    && groupadd --system --gid 10001 pixelmill \
    && useradd --system --uid 10001 --gid pixelmill --home-dir /home/pixelmill --create-home pixelmill \
    && install -d -o pixelmill -g pixelmill /data
USER 10001:10001
# Fail the build when libvips or the bundled models did not come along.
RUN python -c "import pyvips; pyvips.Image.black(1, 1)" && pixelmill models list
WORKDIR /home/pixelmill
EXPOSE 8080 9100
# The API's liveness; a worker's container replaces it (compose.yaml asks its metrics port).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["pixelmill"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
