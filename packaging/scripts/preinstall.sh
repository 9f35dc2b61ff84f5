#!/bin/sh
# Creates the posgate system user, a member of dialout (serial devices) and lp
# (USB printers). Its home is the state directory; it has no login shell.
set -e
if ! getent passwd posgate >/dev/null; then
	adduser --system --group --home /var/lib/posgate --no-create-home --shell /usr/sbin/nologin posgate
fi
for g in dialout lp; do
	if getent group "$g" >/dev/null; then
		adduser posgate "$g" >/dev/null
	fi
done
