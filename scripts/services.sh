#!/usr/bin/env bash
# Makes sure the services the test suite talks to are up on loopback:
# RabbitMQ on 127.0.0.1:5672 (management API on 15672) and an S3 server
# (s3s-fs) on 127.0.0.1:8014.
# Idempotent: starts only what is not already answering.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
S3_PORT=${THUMBFARM_TEST_S3_PORT:-8014}
S3_ROOT=${THUMBFARM_TEST_S3_ROOT:-/tmp/thumbfarm-s3}
export PATH="$HOME/.cargo/bin:$PATH"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 what=$2
  for _ in $(seq 1 120); do
    port_open "$port" && return 0
    sleep 0.5
  done
  echo "services: $what did not come up on 127.0.0.1:$port" >&2
  return 1
}

if ! port_open 5672; then
  echo "services: starting RabbitMQ"
  rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_port 5672 RabbitMQ
  rabbitmqctl await_startup >/dev/null 2>&1 || true
fi

# The management API gives the unacked counts and rates on /metrics
# (THUMBFARM_RABBITMQ_MANAGEMENT_URL); the plugin ships with RabbitMQ.
if ! port_open 15672; then
  echo "services: enabling RabbitMQ's management plugin"
  rabbitmq-plugins enable rabbitmq_management >/dev/null 2>&1 || true
  wait_port 15672 "RabbitMQ management"
fi

if ! port_open "$S3_PORT"; then
  echo "services: starting s3s-fs on 127.0.0.1:$S3_PORT (data in $S3_ROOT)"
  mkdir -p "$S3_ROOT"
  nohup s3s-fs --host 127.0.0.1 --port "$S3_PORT" \
    --access-key "${THUMBFARM_TEST_S3_ACCESS_KEY:-thumbfarm}" \
    --secret-key "${THUMBFARM_TEST_S3_SECRET_KEY:-thumbfarm-secret}" \
    "$S3_ROOT" >/tmp/thumbfarm-s3s.log 2>&1 &
  wait_port "$S3_PORT" s3s-fs
fi
# Virtual-host-style S3 addressing (bucket.domain) needs names: a second
# s3s-fs answers for *.s3.localhost on 8015, and the test bucket's host name
# resolves to loopback through /etc/hosts.
VHOST_PORT=${THUMBFARM_TEST_S3_VHOST_PORT:-8015}
VHOST_DOMAIN=s3.localhost
VHOST_BUCKET=thumbfarm-vhost
if ! getent hosts "$VHOST_BUCKET.$VHOST_DOMAIN" >/dev/null 2>&1; then
  echo "services: adding $VHOST_BUCKET.$VHOST_DOMAIN to /etc/hosts"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "127.0.0.1 $VHOST_DOMAIN $VHOST_BUCKET.$VHOST_DOMAIN" | $sudo tee -a /etc/hosts >/dev/null
fi
if ! port_open "$VHOST_PORT"; then
  echo "services: starting s3s-fs for virtual-host addressing on $VHOST_DOMAIN:$VHOST_PORT"
  mkdir -p "$S3_ROOT-vhost"
  nohup s3s-fs --host 127.0.0.1 --port "$VHOST_PORT" --domain "$VHOST_DOMAIN:$VHOST_PORT" \
    --access-key "${THUMBFARM_TEST_S3_ACCESS_KEY:-thumbfarm}" \
    --secret-key "${THUMBFARM_TEST_S3_SECRET_KEY:-thumbfarm-secret}" \
    "$S3_ROOT-vhost" >/tmp/thumbfarm-s3s-vhost.log 2>&1 &
  wait_port "$VHOST_PORT" "s3s-fs (virtual hosts)"
fi
echo "services: RabbitMQ 127.0.0.1:5672 and S3 http://127.0.0.1:$S3_PORT (virtual hosts: http://$VHOST_DOMAIN:$VHOST_PORT) are up"
