#!/bin/sh
# apply-node-delta.sh - upgrade the packages and images of a Linux node with
# the node delta extracted next to this script.
#
# Steps: run verify-node-delta.sh (files and installed base set); check
# that what is needed is there before changing anything; purge the packages
# the target no longer has; install the added and changed .debs with one
# dpkg -i; import the added and changed images with buildah, podman or ctr
# (whichever is found first); finally check with dpkg-query that exactly the
# target's package versions are installed. Running it again after it
# succeeded only re-imports the images and re-checks.
#
# Usage: apply-node-delta.sh [--skip-images]
#   --skip-images  do not import images (import images/*.tar yourself)
#
# Run as root. Needs only a POSIX sh, coreutils, dpkg and awk.
set -u
prog=apply-node-delta.sh

err() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { err "$*"; exit 1; }
info() { printf '%s: %s\n' "$prog" "$*"; }
usage() { sed -n 's/^# \{0,1\}//;/^Usage:/,/^$/p' "$0" >&2; exit 2; }

skip_images=0
while [ $# -gt 0 ]; do
	case $1 in
	--skip-images) skip_images=1 ;;
	-h | --help) usage ;;
	*) err "unknown argument: $1"; usage ;;
	esac
	shift
done

here=$(dirname -- "$0") && here=$(cd -- "$here" && pwd) || die "cannot find the directory of $0"
cd -- "$here" || die "cannot change to $here"
[ "$(id -u)" = 0 ] || die "must run as root: dpkg needs it"

state=$(sh ./verify-node-delta.sh --state) ||
	die "verification failed (see above); nothing was changed"

# Payload from SHA256SUMS, which verify-node-delta.sh has just checked. Paths
# are relative to $here and contain no white space or shell patterns
# (release refuses such names), so plain word splitting is safe.
debs=
images=
ndebs=0
nimages=0
while IFS= read -r line || [ -n "$line" ]; do
	file=${line#*  }
	case $file in
	packages/*.deb) debs="$debs ./$file"; ndebs=$((ndebs + 1)) ;;
	images/*.tar) images="$images ./$file"; nimages=$((nimages + 1)) ;;
	esac
done <SHA256SUMS
# Names the target no longer has (package names are [a-z0-9+.-] only).
purge=$(awk 'FILENAME == ARGV[1] { t[substr($0, 1, index($0, "=") - 1)] = 1; next }
	$0 != "" { n = substr($0, 1, index($0, "=") - 1); if (!(n in t)) print n }' packages.target packages.base) ||
	die "awk failed while reading packages.base and packages.target"

# Everything needed must be there before anything changes.
tool=
if [ "$nimages" -gt 0 ] && [ "$skip_images" = 0 ]; then
	for t in buildah podman ctr; do
		if command -v "$t" >/dev/null 2>&1; then
			tool=$t
			break
		fi
	done
	[ -n "$tool" ] || die "$nimages image(s) to import but none of buildah, podman or ctr is installed; install one, or run again with --skip-images and import$images yourself (in $here); nothing was changed"
fi

if [ "$state" = base ]; then
	if [ -n "$purge" ]; then
		# Word splitting of $purge is intended: one argument per name.
		# shellcheck disable=SC2086
		dpkg --dry-run --purge $purge >/dev/null ||
			die "dpkg refuses to purge$(printf ' %s' $purge) (see above); nothing was changed"
		info "purging$(printf ' %s' $purge)"
		# shellcheck disable=SC2086
		dpkg --purge $purge ||
			die "dpkg --purge failed (see above); the node is between the base and the target release: fix the cause, then run dpkg -i$debs in $here"
	fi
	if [ "$ndebs" -gt 0 ]; then
		info "installing $ndebs package(s)"
		# shellcheck disable=SC2086
		dpkg -i $debs ||
			die "dpkg -i failed (see above); the node is between the base and the target release: fix the cause, then run dpkg -i$debs in $here"
	fi
else
	info "packages are already the target set; not installing anything"
fi

if [ "$nimages" -gt 0 ]; then
	if [ "$skip_images" = 1 ]; then
		info "not importing $nimages image(s) (--skip-images)"
	else
		for f in $images; do
			info "importing $(basename -- "$f") with $tool"
			case $tool in
			buildah) buildah pull "oci-archive:$f" ;;
			podman) podman load -i "$f" ;;
			ctr) ctr -n k8s.io images import "$f" ;;
			esac || die "$tool could not import $f (see above); the packages are installed, run $prog again to retry the images"
		done
	fi
fi

sh ./verify-node-delta.sh --expect target >/dev/null ||
	die "after applying, the installed packages are not the target set (see above)"
info "done: the node has the packages of the target release"
