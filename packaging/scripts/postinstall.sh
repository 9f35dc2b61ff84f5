#!/bin/sh
# Makes systemd read the unit. posgate is not started by the package: the shop's
# configuration (/etc/posgate/posgate.toml) comes first, then
#   systemctl enable --now posgate
set -e
chown root:posgate /etc/posgate/posgate.toml
chmod 0640 /etc/posgate/posgate.toml
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null || true
	if systemctl is-active --quiet posgate; then
		systemctl restart posgate || true
	fi
fi
