# rendered by unkai for image api; do not edit
FROM unkai/debian:12
LABEL org.opencontainers.image.title="api" \
      dev.unkai.image="api" \
      dev.unkai.content-hash="06f95bcd9979d70d05187cad3558f5ce995ed6ca137b43b9cef2406a259d4a49"
ENV PORT="8080"
WORKDIR /srv
EXPOSE 8080
USER 10001:10001
CMD ["perl","-e","use IO::Socket::INET;\nmy $s = IO::Socket::INET->new(LocalPort => $ENV{PORT}, Listen => 16, ReuseAddr => 1) or die \"listen: $!\";\n$SIG{TERM} = sub { exit 0 }; # as PID 1 it would ignore the kubelet's SIGTERM otherwise\n$| = 1; print \"api listening on $ENV{PORT}\\n\";\nwhile (my $c = $s->accept) { my $r = <$c>; my $b = \"ok\\n\"; print $c \"HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: \" . length($b) . \"\\r\\n\\r\\n$b\"; close $c; }"]
