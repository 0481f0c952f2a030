# noisead's command line and web viewer in a container (CPU only).
#
#   docker build -t noisead .
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/work" noisead analyze photo.jpg -o results/
#   docker run --rm -p 127.0.0.1:8765:8765 noisead serve --host 0.0.0.0
#
# then open http://127.0.0.1:8765/ . Inside the container the viewer must listen on all
# interfaces (--host 0.0.0.0) for Docker's port mapping to reach it; publishing it on
# 127.0.0.1 keeps it on this machine. Keep the host port 8765: the viewer answers only
# requests addressed to its own port. --user makes the results yours, not the image's user's.

# -- build the wheel from the source (the default model and example ship inside it) ------
FROM python:3.11-slim AS wheel
WORKDIR /src
RUN pip install --no-cache-dir "build>=1.2"
COPY pyproject.toml README.md LICENSE MANIFEST.in ./
COPY src ./src
RUN python -m build --wheel --outdir /dist .

# -- the runtime: CPU PyTorch first (so pip does not fetch a CUDA build), then noisead ----
FROM python:3.11-slim
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY --from=wheel /dist/ /tmp/dist/
RUN pip install --no-cache-dir "$(ls /tmp/dist/noisead-*.whl)[serve]" && rm -rf /tmp/dist
RUN useradd --create-home --uid 1000 noisead
USER noisead
# matplotlib's cache, writable whatever --user the container runs as
ENV MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /work
EXPOSE 8765
ENTRYPOINT ["noisead"]
CMD ["--help"]
