# Prometheus for compose's `monitoring` profile, from Debian's prometheus package (2.42, with
# promtool) on the base image, since no registry is reachable to pull prom/prometheus.
# Build context: docker/ (docker build -f docker/prometheus.Dockerfile docker).
# libjs-moment-timezone (218 MB of time zone data for the classic web console's graphs) is
# dropped: the API, the targets page and the scrapes do not use it.
ARG BASE=node:20-bookworm-slim
FROM $BASE
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
 && dpkg --purge --force-depends libjs-moment-timezone >/dev/null \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && mkdir -p /prometheus && chown prometheus:prometheus /prometheus
COPY prometheus.yml alerts.yml /etc/prometheus/
USER prometheus
EXPOSE 9090
# The bearer token comes from the file OSWALK_TOKEN_FILE names, else from OSWALK_TOKEN:
# Prometheus does not expand variables in its configuration, so it is written to the file the
# scrape configs name. Started as root (compose: the token file is the control plane's user's
# alone), it copies the token, then runs Prometheus as prometheus.
ENTRYPOINT ["sh", "-c", "umask 077; if [ -n \"${OSWALK_TOKEN_FILE:-}\" ]; then cat \"$OSWALK_TOKEN_FILE\"; else printf %s \"$OSWALK_TOKEN\"; fi >/prometheus/token || exit 1; as=''; if [ \"$(id -u)\" = 0 ]; then chown prometheus:prometheus /prometheus/token; as='setpriv --reuid=prometheus --regid=prometheus --init-groups'; fi; exec $as prometheus --config.file=/etc/prometheus/prometheus.yml --storage.tsdb.path=/prometheus --web.listen-address=0.0.0.0:9090 \"$@\"", "prometheus"]
