# rendered by unkai for image worker; do not edit
FROM unkai/debian:12
LABEL org.opencontainers.image.title="worker" \
      dev.unkai.image="worker" \
      dev.unkai.content-hash="c9521d1e3fa00e1a3b36e5ea0d35b20e402be615f5811252fcddb28cb1c2d23e"
ENV WORKER_QUEUE="jobs" \
    WORKER_INTERVAL="30"
WORKDIR /srv
USER 10001:10001
CMD ["/bin/sh", "-c", "while true; do echo \"worker alive on queue $WORKER_QUEUE\"; sleep \"$WORKER_INTERVAL\"; done"]
