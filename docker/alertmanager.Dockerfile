# Debian's prometheus-alertmanager (0.25) on the base image, for compose's `monitoring`
# profile: Prometheus sends it the alerts of docker/alerts.yml, since no registry is reachable
# to pull prom/alertmanager.
# Build context: docker/ (docker build -f docker/alertmanager.Dockerfile docker).
ARG BASE=node:20-bookworm-slim
FROM $BASE
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-alertmanager >/dev/null \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && mkdir -p /alertmanager && chown prometheus:prometheus /alertmanager
COPY alertmanager.yml /etc/prometheus/alertmanager.yml
USER prometheus
EXPOSE 9093
# One instance: no gossip cluster to listen for (--cluster.listen-address empty).
ENTRYPOINT ["prometheus-alertmanager", "--config.file=/etc/prometheus/alertmanager.yml", "--storage.path=/alertmanager", "--web.listen-address=0.0.0.0:9093", "--cluster.listen-address="]
