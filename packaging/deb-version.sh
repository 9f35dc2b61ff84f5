#!/bin/sh
# Prints a Debian package version for this tree: under a tag v1.2.3, 1.2.3
# (commits after it: 1.2.3~5~gabc1234); an untagged tree, 0.0.0~git<short sha>
# (a Debian version must start with a digit).
if v=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
	echo "${v#v}" | tr '-' '~'
else
	echo "0.0.0~git$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
fi
