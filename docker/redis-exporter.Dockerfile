# Debian's prometheus-redis-exporter (1.45) on the base image, for compose's `monitoring`
# profile: Prometheus scrapes Redis through it (redis_up, memory, clients, keys...), since no
# registry is reachable to pull oliver006/redis_exporter.
# Build context: docker/ (docker build -f docker/redis-exporter.Dockerfile docker).
ARG BASE=node:20-bookworm-slim
FROM $BASE
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-redis-exporter >/dev/null \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
USER prometheus
EXPOSE 9121
# Configured from the environment only (REDIS_ADDR; REDIS_PASSWORD for a Redis with one): as
# --redis.password it would be on the command line, which every user of the host can read.
ENTRYPOINT ["prometheus-redis-exporter"]
