# flowhook, one image for every role (docs/deployment.md, "Container").
FROM python:3.11-slim
RUN useradd --create-home flowhook
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir .
COPY flows /etc/flowhook/flows
RUN mkdir -p /var/lib/flowhook && chown flowhook /var/lib/flowhook
USER flowhook
ENV FLOWHOOK_DATA_DIR=/var/lib/flowhook FLOWHOOK_FLOWS_DIR=/etc/flowhook/flows \
    FLOWHOOK_HOST=0.0.0.0 FLOWHOOK_LOG_FORMAT=json FLOWHOOK_CONFIG=
VOLUME /var/lib/flowhook
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2)"]
CMD ["flowhook", "serve"]
