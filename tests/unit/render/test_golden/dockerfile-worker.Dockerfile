# rendered by unkai for image worker; do not edit
FROM unkai/debian:12
LABEL org.opencontainers.image.title="worker" \
      dev.unkai.image="worker" \
      dev.unkai.content-hash="23d0dc704f7814975ea315c82c430b44ed75fac71484e491347ebbdf162c461f"
ENV WORKER_QUEUE="jobs" \
    WORKER_INTERVAL="30"
WORKDIR /srv
USER 10001:10001
CMD ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do echo \"worker alive on queue $WORKER_QUEUE\"; sleep \"$WORKER_INTERVAL\" & wait $!; done"]
