# Redis for the compose cluster, from Debian's redis-server 7.0 on the same base image as
# oswalk:latest (no registry needed, and the base layers are shared on disk). On a host that
# can pull, REDIS_IMAGE=redis:7 in .env uses the official image instead.
ARG BASE=node:20-bookworm-slim
FROM $BASE
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && mkdir -p /data && chown redis:redis /data
USER redis
WORKDIR /data
EXPOSE 6379
# Append-only with fsync every second: OS Walk keeps its whole state here.
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data", "--appendonly", "yes", "--save", ""]
