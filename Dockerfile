FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY extensions ./extensions
RUN pip install --no-cache-dir . && useradd --create-home paymenter
USER paymenter
ENV PAYMENTER_DATA_DIR=/home/paymenter/var
CMD ["paymenter-worker", "run"]
