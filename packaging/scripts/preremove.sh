#!/bin/sh
# Stops the daemon before its binary goes. The store in /var/lib/posgate stays:
# it holds fiscal records the shop must keep.
set -e
if [ -d /run/systemd/system ]; then
	systemctl stop posgate >/dev/null 2>&1 || true
fi
