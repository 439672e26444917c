#!/usr/bin/env bash
# A newcomer's first `make lab-up`, from nothing, for each git ref given:
# a fresh clone, empty Go module and build caches, no lab image in the
# engine; module download + build + image + containers + Bob's first flow.
# The lab and its image are removed after each run.
#
#   bench/coldstart.sh [REF ...]     (default: HEAD)
#
# Needs git, make, go and a Docker engine (the docker CLI removes the image).
set -euo pipefail
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
printf '%-12s %9s %9s %8s %9s  %s\n' ref total build modules lab-up subject
for ref in "${@:-HEAD}"; do
	work=$(mktemp -d /tmp/doublehop-cold.XXXXXX)
	git clone -q "$repo" "$work/src"
	git -C "$work/src" checkout -q "$ref"
	# No lab image: the run imports its own (images in use by a running lab stay).
	docker images -q doublehop | sort -u | xargs -r docker rmi -f >/dev/null 2>&1 || true
	name=cold$$
	t0=$(date +%s.%N)
	GOMODCACHE=$work/mod GOCACHE=$work/cache GOFLAGS=-modcacherw \
		make -C "$work/src" build >"$work/build.log" 2>&1
	t1=$(date +%s.%N)
	GOMODCACHE=$work/mod GOCACHE=$work/cache GOFLAGS=-modcacherw \
		make -C "$work/src" lab-up LAB=$name >"$work/up.log" 2>&1 || { cat "$work/up.log"; exit 1; }
	t2=$(date +%s.%N)
	mods=$(du -sm "$work/mod/cache/download" | cut -f1)
	grep -q "SUSER_SNAME()=LAB\\\\bob" "$work/up.log" || { echo "$ref: no Kerberos flow as LAB\\bob"; cat "$work/up.log"; exit 1; }
	printf '%-12s %8.1fs %8.1fs %6sMB %8.1fs  %s\n' "$(git -C "$work/src" rev-parse --short HEAD)" \
		"$(echo "$t2 - $t0" | bc)" "$(echo "$t1 - $t0" | bc)" "$mods" "$(echo "$t2 - $t1" | bc)" \
		"$(git -C "$work/src" log -1 --format=%s | cut -c1-60)"
	"$work/src/bin/doublehop" lab down --name $name >/dev/null 2>&1 || true
	rm -rf "$work"
done
