# rendered by unkai for image api; do not edit
FROM unkai/debian:12
LABEL org.opencontainers.image.title="api" \
      dev.unkai.image="api" \
      dev.unkai.content-hash="f4885927b3069bca373fb519ad98e15dcb8559245d7118580701165c0b9ae760"
ENV PORT="8080"
WORKDIR /srv
EXPOSE 8080
USER 10001:10001
CMD ["perl","-e","use IO::Socket::INET;\nmy $s = IO::Socket::INET->new(LocalPort => $ENV{PORT}, Listen => 16, ReuseAddr => 1) or die \"listen: $!\";\n$| = 1; print \"api listening on $ENV{PORT}\\n\";\nwhile (my $c = $s->accept) { my $r = <$c>; my $b = \"ok\\n\"; print $c \"HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: \" . length($b) . \"\\r\\n\\r\\n$b\"; close $c; }"]
