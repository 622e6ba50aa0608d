#!/bin/sh
# verify-node-delta.sh - check a node delta on the Linux node it is meant for.
#
# Run it from the extracted delta (any working directory will do). It checks
#   1. the SHA-256 of every file listed in SHA256SUMS (a modified or corrupt
#      delta is refused), and
#   2. with dpkg-query, that the installed packages are exactly the versions
#      of the delta's base (packages.base), or already those of its target
#      (packages.target, with every package the target drops gone).
# It changes nothing. Exit status: 0 when the delta can be applied (or is
# applied already), 1 when something is wrong (each problem is named on
# stderr), 2 on a usage error.
#
# Usage: verify-node-delta.sh [--state] [--expect base|target|any] [--files-only]
#   --state        print only "base" or "target" on stdout (for apply-node-delta.sh)
#   --expect S     accept only the base set, only the target set, or either (default)
#   --files-only   check the files only, not the installed packages
#
# Needs only a POSIX sh, coreutils, dpkg and awk (no jq, no bash).
set -u
prog=verify-node-delta.sh

err() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { err "$*"; exit 1; }
usage() { sed -n 's/^# \{0,1\}//;/^Usage:/,/^$/p' "$0" >&2; exit 2; }

print_state=0
expect=any
files_only=0
while [ $# -gt 0 ]; do
	case $1 in
	--state) print_state=1 ;;
	--expect)
		[ $# -ge 2 ] || usage
		case $2 in base | target | any) expect=$2 ;; *) usage ;; esac
		shift
		;;
	--files-only) files_only=1 ;;
	-h | --help) usage ;;
	*) err "unknown argument: $1"; usage ;;
	esac
	shift
done
info() { [ "$print_state" = 1 ] || printf '%s: %s\n' "$prog" "$*"; }

here=$(dirname -- "$0") && cd -- "$here" || die "cannot change to the directory of $0"

# Versions for messages only; delta-manifest.json is written by release
# with two-space indentation, one field per line.
field() { sed -n "s/^  \"$1\": \"\\([^\"]*\\)\",\$/\\1/p" delta-manifest.json 2>/dev/null; }
base_version=$(field BaseVersion)
target_version=$(field TargetVersion)
: "${base_version:=base}" "${target_version:=target}"

for f in SHA256SUMS packages.base packages.target; do
	[ -f "$f" ] || die "$f is missing from $(pwd); extract the whole node delta zip again"
done

# 1. Every shipped file against SHA256SUMS.
bad=0
count=0
while IFS= read -r line || [ -n "$line" ]; do
	[ -n "$line" ] || continue
	want=${line%%  *}
	file=${line#*  }
	case $want in
	*[!0-9a-f]*) want= ;;
	esac
	case $file in
	/* | ../* | */../* | *..) file= ;;
	esac
	if [ ${#want} -ne 64 ] || [ -z "$file" ] || [ "$file" = "$line" ]; then
		err "SHA256SUMS has a malformed line: $line"
		bad=1
		continue
	fi
	count=$((count + 1))
	if [ ! -f "$file" ]; then
		err "$file is missing; extract the whole node delta zip again"
		bad=1
		continue
	fi
	got=$(sha256sum <"$file") || {
		err "$file cannot be read"
		bad=1
		continue
	}
	got=${got%% *}
	if [ "$got" != "$want" ]; then
		err "$file has SHA-256 $got but SHA256SUMS says $want: the file was modified or is corrupt; obtain the node delta again"
		bad=1
	fi
done <SHA256SUMS
[ "$bad" = 0 ] || die "the node delta's files do not verify (see above); nothing was changed"
info "$count files match SHA256SUMS"
[ "$files_only" = 0 ] || exit 0

# 2. Installed packages against the base and target sets.
command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this is not a Debian-based node"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/verify-node-delta.XXXXXX") || die "cannot create a temporary directory"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
dpkg-query -W -f '${db:Status-Status} ${Package} ${Version}\n' >"$tmp/installed" 2>"$tmp/err" ||
	die "dpkg-query failed: $(cat "$tmp/err")"

# awk prints the state ("base" or "target") or, for "none", the problems
# one per line relative to the expected set.
awk -v expect="$expect" -v bv="$base_version" -v tv="$target_version" '
function setline(arr, line,    i) {
	i = index(line, "=")
	if (i < 2) { bad = bad "malformed line in " FILENAME ": " line "\n"; return }
	arr[substr(line, 1, i - 1)] = substr(line, i + 1)
}
FILENAME == ARGV[1] { if ($0 != "") setline(base, $0); next }
FILENAME == ARGV[2] { if ($0 != "") setline(target, $0); next }
{ st[$2] = $1; if ($1 == "installed") ver[$2] = $3 }
function have(n) { return (n in st) && st[n] == "installed" }
function gone(n) { return !(n in st) || st[n] == "not-installed" }
function state(n) { return (n in st) && st[n] != "not-installed" ? " (dpkg state " st[n] ")" : "" }
END {
	if (bad != "") { printf "%s", bad; print "none"; exit }
	okb = 1; okt = 1
	for (n in base) if (!have(n) || ver[n] != base[n]) okb = 0
	for (n in target) if (!have(n) || ver[n] != target[n]) okt = 0
	for (n in base) if (!(n in target) && !gone(n)) okt = 0
	if (okb && expect != "target") { print "base"; exit }
	if (okt && expect != "base") { print "target"; exit }
	if (expect == "target") {
		for (n in target) {
			if (!have(n)) printf "package %s is not installed%s; %s needs %s\n", n, state(n), tv, target[n]
			else if (ver[n] != target[n]) printf "package %s %s is installed; %s needs %s\n", n, ver[n], tv, target[n]
		}
		for (n in base) if (!(n in target) && !gone(n)) printf "package %s is still present (%s); %s no longer has it\n", n, st[n], tv
	} else {
		for (n in base) {
			if (!have(n)) printf "package %s is not installed%s; the delta'"'"'s base %s has %s\n", n, state(n), bv, base[n]
			else if (ver[n] != base[n]) {
				if ((n in target) && ver[n] == target[n]) why = "already the version of " tv
				else why = "neither the version of " bv " nor of " tv
				printf "package %s %s is installed; the delta'"'"'s base %s has %s (%s)\n", n, ver[n], bv, base[n], why
			}
		}
	}
	print "none"
}' packages.base packages.target "$tmp/installed" >"$tmp/result" || die "awk failed while comparing packages"

state=$(tail -n 1 "$tmp/result")
case $state in
base)
	info "installed packages are the base set ($base_version): the delta can be applied"
	;;
target)
	info "installed packages are already the target set ($target_version): nothing to install"
	;;
*)
	sed '$d' "$tmp/result" | sort | while IFS= read -r l; do err "$l"; done
	case $expect in
	target) die "the installed packages are not the target set ($target_version) of this node delta" ;;
	base) die "the installed packages are not the base set ($base_version) of this node delta: it was made for another release; use the delta from the installed release" ;;
	*) die "the installed packages are neither the base set ($base_version) nor the target set ($target_version) of this node delta: it was made for another release; use the delta from the installed release" ;;
	esac
	;;
esac
[ "$print_state" = 0 ] || printf '%s\n' "$state"
exit 0
