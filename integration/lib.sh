# lib.sh -- shared by the integration scenarios (sourced, bash).
#
# A scenario calls `scenario_init NAME`, makes what it needs under $T (a private
# temp directory), checks things with `check`/`assert_eq`/`assert`, and defines
# `teardown` (the client-level cleanup a user would do: rm containers, stop the
# daemon). On exit, lib.sh runs teardown, checks that each container had been in
# the cgroup or systemd scope its cgroupsPath names, then verifies that the runtime
# left nothing behind (containers in its state roots, cgroups named after the
# containers, with systemd their scopes, mounts under $T, processes using $T),
# then removes whatever is
# left anyway (so a failed run leaves nothing either), prints a summary and exits
# non-zero if any check failed.
#
# The client is given $T/bin/rt, a small wrapper that appends its arguments
# to $T/rt-calls.log and execs $RT: the log says which containers the client
# created and with which --root, which the leftover checks use. It also keeps, in
# $T/ctrs/, each container's config.json (at create) and its init's /proc/PID/cgroup
# (at start): at the end every container must have run in the cgroup (cgroupfs) or
# systemd scope (systemd) that its cgroupsPath names.
#
# Environment: RT (runtime binary, default target/debug/rt of this repository),
# RT_CGROUP_MANAGER (systemd or cgroupfs: the clients' cgroup manager, so the
# runtime's --systemd-cgroup or not; default systemd when systemd runs, i.e.
# /run/systemd/system exists, else cgroupfs), STEP_TIMEOUT (seconds per client
# command, default 60), KEEP_TMP=1 (keep $T for debugging; nothing else is kept),
# VERBOSE=1 (print every command).

set -u

INTEG_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$INTEG_DIR")
RT=${RT:-$REPO/target/debug/rt}
case $RT in
/*) ;;
*/*) RT=$PWD/$RT ;;
*) RT=$(command -v "$RT" || echo "$PWD/$RT") ;;
esac
STEP_TIMEOUT=${STEP_TIMEOUT:-60}
if [ -z "${RT_CGROUP_MANAGER:-}" ]; then
	if [ -d /run/systemd/system ]; then RT_CGROUP_MANAGER=systemd; else RT_CGROUP_MANAGER=cgroupfs; fi
fi
CGROUP_MANAGER=$RT_CGROUP_MANAGER

CHECKS=0
FAILS=0
FAILED_NAMES=()
T=
SCENARIO=
CGROUP_PARENTS=()   # cgroup directories (relative to a hierarchy) a scenario's client makes
HOST_PATHS=(/run/containerd /run/containers /run/libpod /var/lib/containers /etc/containers/networks
	/var/lib/cni /run/netns /var/lib/containerd /opt/containerd)

if { [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; } || [ "${RTINT_COLOR:-}" = 1 ]; then
	C_RED=$'\e[31m' C_GREEN=$'\e[32m' C_DIM=$'\e[2m' C_OFF=$'\e[0m'
else
	C_RED='' C_GREEN='' C_DIM='' C_OFF=''
fi

say() { printf '%s[%s]%s %s\n' "$C_DIM" "$SCENARIO" "$C_OFF" "$*"; }

# quote STRING: a printable one-line rendering of a (maybe multi-line) value.
quote() {
	case $1 in
	*[[:cntrl:]]*) printf '%q' "$1" ;;
	*) printf '"%s"' "$1" ;;
	esac
}

pass() {
	CHECKS=$((CHECKS + 1))
	printf '  %sok%s   %s\n' "$C_GREEN" "$C_OFF" "$1"
}

# fail DESC LINE...: a failed check; each further argument is printed as a detail line.
fail() {
	CHECKS=$((CHECKS + 1))
	FAILS=$((FAILS + 1))
	FAILED_NAMES+=("$1")
	printf '  %sFAIL%s %s\n' "$C_RED" "$C_OFF" "$1"
	shift
	local l
	for l in "$@"; do
		printf '%s\n' "$l" | sed 's/^/       /'
	done
}

# fatal WHY: stop the scenario (after a failed check it cannot go on without).
fatal() {
	say "${C_RED}cannot continue${C_OFF}: $*"
	exit 1
}

# took T0: TOOK=" (N.Ns)" if more than a second passed since T0 (microseconds, from
# EPOCHREALTIME), else empty: check prints it after the description.
took() {
	local us=$((${EPOCHREALTIME/./} - $1))
	TOOK=''
	[ $us -ge 1000000 ] && TOOK=$(printf ' (%d.%ds)' $((us / 1000000)) $((us % 1000000 / 100000)))
	return 0
}

# run CMD...: run a command with a timeout and no stdin; sets RC, OUT (stdout,
# carriage returns dropped, trailing newlines trimmed), ERR and CMD_TEXT.
run() {
	CMD_TEXT=$(printf '%q ' "$@")
	[ "${VERBOSE:-}" = 1 ] && say "+ $CMD_TEXT"
	local t0=${EPOCHREALTIME/./}
	timeout -k 5 "$STEP_TIMEOUT" "$@" </dev/null >"$T/.out" 2>"$T/.err"
	RC=$?
	took "$t0"
	OUT=$(tr -d '\r' <"$T/.out")
	ERR=$(tr -d '\r' <"$T/.err")
	if [ "$RC" = 124 ]; then ERR="$ERR
(timed out after ${STEP_TIMEOUT}s)"; fi
}

# check DESC [--rc N] [--out TEXT] [--out-re RE] [--out-not-re RE] [--err-re RE]
#            [--err-not-re RE] [--stdin TEXT] -- CMD...
# Runs CMD and compares its exit code (default: 0), its whole stdout (--out),
# or regular expressions (grep -E) its stdout/stderr must or must not match.
check() {
	local desc=$1
	shift
	local want_rc=0 want_out='' have_out=0 stdin='' have_stdin=0
	local -a out_re=() out_not_re=() err_re=() err_not_re=()
	while [ $# -gt 0 ]; do
		case $1 in
		--rc) want_rc=$2; shift 2 ;;
		--out) want_out=$2; have_out=1; shift 2 ;;
		--out-re) out_re+=("$2"); shift 2 ;;
		--out-not-re) out_not_re+=("$2"); shift 2 ;;
		--err-re) err_re+=("$2"); shift 2 ;;
		--err-not-re) err_not_re+=("$2"); shift 2 ;;
		--stdin) stdin=$2; have_stdin=1; shift 2 ;;
		--) shift; break ;;
		*) echo "check: bad option $1" >&2; exit 2 ;;
		esac
	done
	if [ $have_stdin = 1 ]; then
		CMD_TEXT="printf %s $(quote "$stdin") | $(printf '%q ' "$@")"
		[ "${VERBOSE:-}" = 1 ] && say "+ $CMD_TEXT"
		local t0=${EPOCHREALTIME/./}
		printf '%s' "$stdin" | timeout -k 5 "$STEP_TIMEOUT" "$@" >"$T/.out" 2>"$T/.err"
		RC=$?
		took "$t0"
		OUT=$(tr -d '\r' <"$T/.out")
		ERR=$(tr -d '\r' <"$T/.err")
	else
		run "$@"
	fi
	local -a why=() want=()
	if [ "$want_rc" != '*' ]; then
		want+=("exit code $want_rc")
		[ "$RC" = "$want_rc" ] || why+=("exit code")
	fi
	if [ $have_out = 1 ]; then
		want+=("stdout $(quote "$want_out")")
		[ "$OUT" = "$want_out" ] || why+=("stdout")
	fi
	local re
	for re in ${out_re[@]+"${out_re[@]}"}; do
		want+=("stdout matching /$re/")
		grep -Eq -- "$re" <<<"$OUT" || why+=("stdout /$re/")
	done
	for re in ${out_not_re[@]+"${out_not_re[@]}"}; do
		want+=("stdout not matching /$re/")
		grep -Eq -- "$re" <<<"$OUT" && why+=("stdout !/$re/")
	done
	for re in ${err_re[@]+"${err_re[@]}"}; do
		want+=("stderr matching /$re/")
		grep -Eq -- "$re" <<<"$ERR" || why+=("stderr /$re/")
	done
	for re in ${err_not_re[@]+"${err_not_re[@]}"}; do
		want+=("stderr not matching /$re/")
		grep -Eq -- "$re" <<<"$ERR" && why+=("stderr !/$re/")
	done
	if [ ${#why[@]} = 0 ]; then
		pass "$desc$TOOK"
		return 0
	fi
	local IFS=';'
	fail "$desc$TOOK" "command:  $CMD_TEXT" "expected: ${want[*]}" \
		"got:      exit code $RC, stdout $(quote "$(head -c 2000 <<<"$OUT")")" \
		"stderr:   $(head -c 3000 <<<"$ERR")"
	return 1
}

# assert_eq DESC EXPECTED ACTUAL [DETAIL...]
assert_eq() {
	if [ "$2" = "$3" ]; then
		pass "$1"
	else
		local d=$1 e=$2 a=$3
		shift 3
		fail "$d" "expected: $(quote "$e")" "got:      $(quote "$a")" "$@"
		return 1
	fi
}

# retry SECONDS CMD...: run CMD (quietly) every 0.1 s until it succeeds or time is up.
retry() {
	local end=$((SECONDS + $1))
	shift
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ $SECONDS -ge $end ] && return 1
		sleep 0.1
	done
}

# --- environment ---------------------------------------------------------

# need_pkgs PKG...: install the Debian packages that are missing (apt-get update first);
# nothing happens when all are there. Where they cannot be installed (no apt-get, no
# network, a hack/vm guest) the scenario fails, naming them.
need_pkgs() {
	local p missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} = 0 ] && return 0
	if [ -n "${RTVM_FLAVOUR:-}" ]; then # hack/vm's guests have no network
		fail "packages installed: ${missing[*]}" \
			"missing in the hack/vm guest image, which has no network: add them to PACKAGES in hack/vm"
		fatal "missing packages"
	fi
	if ! command -v apt-get >/dev/null; then
		fail "packages installed: ${missing[*]}" "missing, and no apt-get to install them: install them first"
		fatal "missing packages"
	fi
	say "installing ${missing[*]}"
	if ! { timeout 300 apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "${missing[@]}"; } >"$T/apt.log" 2>&1; then
		tail -20 "$T/apt.log"
		fail "packages installed: ${missing[*]}" "missing, and apt-get could not install them (see above): install them first"
		fatal "missing packages"
	fi
}

# The runtime's default state root, as its --help tells (runc: "/run/runc", rt: /run/rt).
rt_default_root() {
	"$RT" --help 2>&1 | grep -- '--root' | grep -o 'default: "\?/[^]"]*' | head -1 | sed 's/default: "\{0,1\}//'
}

# scenario_init NAME: check prerequisites, make $T and the runtime wrapper, install the EXIT trap.
scenario_init() {
	SCENARIO=$1
	if [ "$(id -u)" != 0 ]; then
		if [ "${CI:-}" = true ]; then
			echo "[$SCENARIO] FAIL: integration scenarios need root" >&2
			exit 1
		fi
		echo "[$SCENARIO] SKIP: integration scenarios need root"
		exit 77
	fi
	if [ ! -x "$RT" ]; then
		echo "[$SCENARIO] FAIL: runtime binary $RT not found (cargo build -p rt, or set RT=/path/to/runtime)" >&2
		exit 1
	fi
	case $CGROUP_MANAGER in
	cgroupfs) ;;
	systemd)
		if [ ! -d /run/systemd/system ] || ! command -v systemctl >/dev/null; then
			echo "[$SCENARIO] FAIL: RT_CGROUP_MANAGER=systemd, but systemd is not running here" >&2
			exit 1
		fi
		;;
	*)
		echo "[$SCENARIO] FAIL: RT_CGROUP_MANAGER=$CGROUP_MANAGER: expected systemd or cgroupfs" >&2
		exit 1
		;;
	esac
	T=$(mktemp -d "/tmp/rtint-$SCENARIO.XXXXXX")
	chmod 755 "$T"
	trap scenario_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	mkdir -p "$T/bin" "$T/tmp" "$T/ctrs"
	{
		printf "#!/bin/sh\nW_T='%s'\nW_RT='%s'\n" "$T" "$RT"
		cat <<'EOF'
# The runtime, as the integration scenario's client sees it: logs the call, keeps
# what the cgroup checks need (at create: config.json, the caller's cgroup, whether
# --systemd-cgroup was given; at start: the init's cgroup), execs it.
printf '%s\n' "$*" >>"$W_T/rt-calls.log"
sub='' skip='' prev='' id='' bundle='' pidfile='' systemd=''
for a; do
	if [ -z "$sub" ]; then # global options, then the command
		if [ -n "$skip" ]; then skip=''; continue; fi
		case $a in
		--root | --log | --log-format | --criu) skip=1 ;;
		--systemd-cgroup) systemd=1 ;;
		-*) ;;
		*) sub=$a ;;
		esac
	else
		case $prev in --bundle | -b) bundle=$a ;; --pid-file) pidfile=$a ;; esac
		case $a in --bundle=*) bundle=${a#*=} ;; --pid-file=*) pidfile=${a#*=} ;; esac
	fi
	prev=$a id=$a
done
case $sub in
create | run)
	cp "${bundle:-.}/config.json" "$W_T/ctrs/$id.json" 2>/dev/null
	cat /proc/self/cgroup >"$W_T/ctrs/$id.caller"
	if [ -n "$systemd" ]; then : >"$W_T/ctrs/$id.systemd"; else rm -f "$W_T/ctrs/$id.systemd"; fi
	[ -n "$pidfile" ] && printf '%s\n' "$pidfile" >"$W_T/ctrs/$id.pidfile"
	;;
start)
	if [ -s "$W_T/ctrs/$id.pidfile" ]; then
		pid=$(cat "$(cat "$W_T/ctrs/$id.pidfile")" 2>/dev/null)
		[ -n "$pid" ] && cat "/proc/$pid/cgroup" >"$W_T/ctrs/$id.cgroup" 2>/dev/null
	fi
	;;
esac
exec "$W_RT" "$@"
EOF
	} >"$T/bin/rt"
	chmod 755 "$T/bin/rt"
	: >"$T/rt-calls.log"
	WRAP=$T/bin/rt
	RT_DEFAULT_ROOT=$(rt_default_root)
	[ -n "$RT_DEFAULT_ROOT" ] || RT_DEFAULT_ROOT=/run/rt
	RT_VERSION=$("$RT" --version 2>&1 | head -1)
	say "runtime $RT ($RT_VERSION), default root $RT_DEFAULT_ROOT, cgroup manager $CGROUP_MANAGER, temp dir $T"
	# What exists before we start, so that only what we create is removed.
	HOST_PATHS_BEFORE=()
	local p
	for p in "${HOST_PATHS[@]}" "$RT_DEFAULT_ROOT"; do
		[ -e "$p" ] && HOST_PATHS_BEFORE+=("$p")
	done
	SCENARIO_START=$SECONDS
}

# cgroup_parents DIR...: note the client's parent cgroups (e.g. libpod_parent) that
# do not exist yet, to remove them at the end (cgroupfs only: with systemd the
# parents are slices, systemd's to keep or drop).
cgroup_parents() {
	local p h
	[ "$CGROUP_MANAGER" = systemd ] && return 0
	for p in "$@"; do
		for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
			[ -d "$h" ] && [ ! -e "$h/$p" ] && [ -e "$h/cgroup.procs" ] && CGROUP_PARENTS+=("$h/$p")
		done
	done
}

# The (root, id) of every container the client created through the wrapper.
created_containers() {
	local line w root id sub i
	local -a words
	while IFS= read -r line; do
		read -r -a words <<<"$line"
		root=$RT_DEFAULT_ROOT
		sub=''
		for ((i = 0; i < ${#words[@]}; i++)); do
			w=${words[i]}
			case $w in
			--root) root=${words[i + 1]}; i=$((i + 1)) ;;
			--root=*) root=${w#--root=} ;;
			--log | --log-format) i=$((i + 1)) ;;
			-*) ;;
			*) [ -z "$sub" ] && sub=$w ;;
			esac
		done
		case $sub in
		create | run) echo "$root ${words[${#words[@]} - 1]}" ;;
		esac
	done <"$T/rt-calls.log" | sort -u
}

# The roots the client passed to the runtime (for the summary).
roots_used() { created_containers | cut -d' ' -f1 | sort -u | tr '\n' ' '; }

# Mounts at or under $T, deepest first.
mounts_under_tmp() {
	findmnt -rn -o TARGET | sed 's/\\x20/ /g' | grep -E "^$T(/|$)" | sort -r
}

# Pids of processes (other than this shell and its children) whose command line mentions $T.
procs_using_tmp() {
	local d pid
	for d in /proc/[0-9]*; do
		pid=${d#/proc/}
		[ "$pid" = $$ ] && continue
		[ "$pid" = "$BASHPID" ] && continue
		tr '\0' ' ' 2>/dev/null <"$d/cmdline" | grep -qF -- "$T" || continue
		# not ours: e.g. a `timeout` or `grep` started by this script
		case $(cat 2>/dev/null "$d/comm") in grep | tr | timeout) continue ;; esac
		echo "$pid"
	done
}

# --- cgroups and systemd scopes -------------------------------------------------

# cgroup_of FILE: a process's cgroup in the hierarchy that tells, from (a copy of) its
# /proc/PID/cgroup: the unified one on cgroup v2, else systemd's (name=systemd) with
# the systemd manager, else the memory controller's.
cgroup_of() {
	if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
		sed -n 's/^0:://p' "$1"
	elif [ "$CGROUP_MANAGER" = systemd ]; then
		sed -n 's/^[0-9]*:name=systemd://p' "$1"
	else
		grep -E '^[0-9]+:([^:]*,)?memory(,[^:]*)?:' "$1" | cut -d: -f3
	fi 2>/dev/null | head -1
}

# slice_path SLICE: where systemd puts a slice's cgroup (a-b.slice: /a.slice/a-b.slice).
slice_path() {
	local part acc='' p=''
	[ "$1" = -.slice ] && return 0
	local IFS=-
	for part in ${1%.slice}; do
		acc=${acc:+$acc-}$part
		p=$p/$acc.slice
	done
	printf '%s\n' "$p"
}

# expected_cgroup DRIVER CGROUPS_PATH ID CALLER: the cgroup (a bash pattern) that a
# container with this cgroupsPath must be in, by runc's rules, when the runtime was
# called from the cgroup CALLER. DRIVER systemd (--systemd-cgroup): `slice:prefix:name`
# is the scope prefix-name.scope in the slice (an empty slice is system.slice; a name
# ending in .slice is a slice of its own); no cgroupsPath, a scope named after the
# container in system.slice (runc-ID.scope; the prefix is the runtime's). DRIVER
# cgroupfs: an absolute path is itself; a relative one (no cgroupsPath: the ID) is
# below the caller's cgroup on cgroup v1, and on v2 below the caller's parent (runc's
# fs2 driver: the caller's own cgroup holds processes, so its children could have
# no controllers).
expected_cgroup() {
	local driver=$1 cgp=$2 id=$3 caller=$4 slice prefix name
	if [ "$driver" = systemd ]; then
		if [ -z "$cgp" ]; then
			printf '/system.slice/*%s.scope\n' "$id"
			return 0
		fi
		IFS=: read -r slice prefix name <<<"$cgp"
		[ -n "$slice" ] || slice=system.slice
		[ -n "$name" ] || name=$id
		case $name in
		*.slice) slice_path "$name" ;;
		*) printf '%s/%s%s.scope\n' "$(slice_path "$slice")" "${prefix:+$prefix-}" "$name" ;;
		esac
	else
		case $cgp in
		/*) printf '%s\n' "$cgp" ;;
		*)
			[ -n "$caller" ] || return 0
			[ -e /sys/fs/cgroup/cgroup.controllers ] && caller=$(dirname "$caller")
			printf '%s/%s\n' "${caller%/}" "${cgp:-$id}"
			;;
		esac
	fi
}

# spec_cgroups_path FILE: linux.cgroupsPath of a config.json (empty if none).
spec_cgroups_path() {
	grep -o '"cgroupsPath": *"[^"]*"' "$1" 2>/dev/null | head -1 | sed 's/^.*: *"//; s/"$//'
}

# check_container_cgroups: every container the client started was (its init, between
# create and start, as the wrapper saw it) in the cgroup, or with --systemd-cgroup the
# systemd scope, that its cgroupsPath names (expected_cgroup). With the systemd
# manager, the containers started with --systemd-cgroup are counted apart: a client
# may leave the choice to the runtime's default (buildah bud does).
check_container_cgroups() {
	local f id have want cgp driver n=0 nsd=0 bad=() caller
	for f in "$T"/ctrs/*.cgroup; do
		[ -s "$f" ] || continue
		id=${f##*/}
		id=${id%.cgroup}
		have=$(cgroup_of "$f")
		cgp=$(spec_cgroups_path "$T/ctrs/$id.json")
		driver=cgroupfs
		[ -e "$T/ctrs/$id.systemd" ] && driver=systemd && nsd=$((nsd + 1))
		caller=$(cgroup_of "$T/ctrs/$id.caller")
		want=$(expected_cgroup "$driver" "$cgp" "$id" "$caller")
		n=$((n + 1))
		# shellcheck disable=SC2053 # $want is a pattern
		[[ -n $want && $have == $want ]] ||
			bad+=("$id ($driver driver, cgroupsPath \"$cgp\", called from ${caller:-?}): in ${have:-(no cgroup)}, expected ${want:-?}")
	done
	local desc="every started container ran in the cgroup (systemd scope with --systemd-cgroup) its cgroupsPath names"
	if [ $n = 0 ]; then
		if ! grep -qE '(^| )(create|run) ' "$T/rt-calls.log"; then
			say "no container was created: no cgroup to check"
			return 0
		fi
		fail "$desc" "no container to check: the wrapper recorded none at start"
	elif [ ${#bad[@]} = 0 ]; then
		pass "$desc ($n checked, $nsd with --systemd-cgroup)"
	else
		fail "$desc" "${bad[@]}"
	fi
	if [ "$CGROUP_MANAGER" = systemd ]; then
		assert_eq "with the systemd manager the client passed --systemd-cgroup (containers with, of all started)" \
			"yes" "$([ $nsd -gt 0 ] && echo yes || echo "none of $n")"
	fi
}

# leftover_units: systemd units still loaded (in any state: active, failed...) for the
# containers: the scopes they ran in, and any unit named after one (e.g. podman's
# libpod-conmon-ID.scope).
leftover_units() {
	[ "$CGROUP_MANAGER" = systemd ] || return 0
	local units f u id
	units=$(systemctl list-units --all --plain --no-legend --full 2>/dev/null | awk '{ print $1 }')
	{
		for f in "$T"/ctrs/*.cgroup; do
			[ -s "$f" ] && [ -e "${f%.cgroup}.systemd" ] || continue
			u=$(cgroup_of "$f")
			u=${u##*/}
			case $u in *.scope) grep -xF -- "$u" <<<"$units" ;; esac
		done
		while read -r _ id; do
			[ -n "$id" ] && grep -F -- "$id" <<<"$units"
		done < <(created_containers)
	} | sort -u
}

# check_cgroup DESC PID SYSTEMD_CGROUP CGROUPFS_CGROUP: the process is in the cgroup the
# client asked for: with systemd, SYSTEMD_CGROUP (.../UNIT.scope), and systemd has the
# unit active on that cgroup; with cgroupfs, CGROUPFS_CGROUP.
check_cgroup() {
	local desc=$1 pid=$2 sd=$3 fs=$4 have
	have=$(cgroup_of "/proc/$pid/cgroup")
	if [ "$CGROUP_MANAGER" = systemd ]; then
		assert_eq "$desc: in the systemd scope ${sd##*/}" "$sd" "$have" "(/proc/$pid/cgroup)"
		check "$desc: systemd has ${sd##*/} active, on that cgroup" \
			--out-re '^ActiveState=active$' --out-re "^ControlGroup=$sd\$" -- \
			systemctl show -p ActiveState -p ControlGroup "${sd##*/}"
	else
		assert_eq "$desc: in the cgroup $fs" "$fs" "$have" "(/proc/$pid/cgroup)"
	fi
}

# check_unit_gone DESC UNIT: (systemd) systemd no longer has the unit, in any state.
check_unit_gone() {
	[ "$CGROUP_MANAGER" = systemd ] || return 0
	check "$1: systemd no longer has $2" --out "" -- systemctl list-units --all --plain --no-legend --full "$2"
}

# Containers, cgroups and mounts that the client and runtime should have removed.
check_leftovers() {
	say "checking that nothing is left behind (roots used: $(roots_used))"
	local root id list left=() cg=() ids
	ids=$(created_containers)
	while read -r root id; do
		[ -n "$id" ] || continue
		list=$(timeout 20 "$RT" --root "$root" list -q 2>/dev/null)
		grep -qxF -- "$id" <<<"$list" && left+=("$id in $root")
		# shellcheck disable=SC2044
		while IFS= read -r d; do [ -n "$d" ] && cg+=("$d"); done < <(find /sys/fs/cgroup -type d -name "*$id*" 2>/dev/null)
	done <<<"$ids"
	# A private root (under $T) must be entirely empty.
	for root in $(cut -d' ' -f1 <<<"$ids" | sort -u); do
		case $root in "$T"/*)
			list=$(timeout 20 "$RT" --root "$root" list -q 2>&1)
			[ -z "$list" ] || left+=("$root holds: $(tr '\n' ' ' <<<"$list")") ;;
		esac
	done
	local IFS=,
	assert_eq "no container left in the runtime's state roots ($RT list)" "" "${left[*]-}" \
		"(containers created: $(grep -c . <<<"$ids"))"
	assert_eq "no cgroup left named after a container" "" "${cg[*]-}"
	unset IFS
	if [ "$CGROUP_MANAGER" = systemd ]; then
		local units u
		units=$(leftover_units | while read -r u; do
			printf '%s (%s) ' "$u" "$(systemctl is-active "$u" 2>/dev/null)"
		done)
		assert_eq "no systemd unit left for a container (scopes stopped and gone)" "" "${units% }"
	fi
	local mnts
	mnts=$(mounts_under_tmp | grep -vxF -f <(printf '%s\n' ${ALLOWED_MOUNTS[@]+"${ALLOWED_MOUNTS[@]}"}) | tr '\n' ',')
	assert_eq "no mount left under $T" "" "${mnts%,}"
	local procs
	procs=$(procs_using_tmp | tr '\n' ' ')
	assert_eq "no process left using $T" "" "${procs% }" \
		"$(for p in $procs; do printf '%s: %s\n' "$p" "$(tr '\0' ' ' 2>/dev/null </proc/$p/cmdline)"; done)"
}

# Remove whatever is left, quietly: containers, processes, mounts, cgroups, paths we created, $T.
force_cleanup() {
	local root id p m h
	while read -r root id; do
		[ -n "$id" ] || continue
		timeout 20 "$RT" --root "$root" state "$id" >/dev/null 2>&1 &&
			timeout 20 "$RT" --root "$root" delete --force "$id" >/dev/null 2>&1
	done < <(created_containers)
	for p in $(procs_using_tmp); do kill -KILL "$p" 2>/dev/null; done
	sleep 0.2
	if [ "$CGROUP_MANAGER" = systemd ]; then
		for m in $(leftover_units); do
			timeout 20 systemctl stop "$m" >/dev/null 2>&1
			timeout 20 systemctl reset-failed "$m" >/dev/null 2>&1
		done
	fi
	for m in $(mounts_under_tmp); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
	# Cgroups named after containers, then the parents the client made.
	while read -r root id; do
		[ -n "$id" ] || continue
		find /sys/fs/cgroup -depth -type d -name "*$id*" -exec rmdir {} \; 2>/dev/null
	done < <(created_containers)
	for h in ${CGROUP_PARENTS[@]+"${CGROUP_PARENTS[@]}"}; do
		[ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	for p in "${HOST_PATHS[@]}"; do
		[ -e "$p" ] || continue
		printf '%s\n' ${HOST_PATHS_BEFORE[@]+"${HOST_PATHS_BEFORE[@]}"} | grep -qxF -- "$p" || rm -rf "$p"
	done
	if [ -d "$RT_DEFAULT_ROOT" ] && ! printf '%s\n' ${HOST_PATHS_BEFORE[@]+"${HOST_PATHS_BEFORE[@]}"} | grep -qxF -- "$RT_DEFAULT_ROOT"; then
		rmdir "$RT_DEFAULT_ROOT" 2>/dev/null
	fi
	if [ "${KEEP_TMP:-}" = 1 ]; then
		say "kept $T (KEEP_TMP=1)"
	else
		rm -rf "$T"
	fi
}

scenario_exit() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$T" ] && [ -d "$T" ]; then
		if declare -F teardown >/dev/null; then
			say "teardown"
			teardown
		fi
		check_container_cgroups
		check_leftovers
		force_cleanup
	fi
	local took=$((SECONDS - ${SCENARIO_START:-$SECONDS}))
	if [ $FAILS -gt 0 ]; then
		say "${C_RED}FAILED${C_OFF}: $FAILS of $CHECKS checks failed (${took}s):"
		printf '    - %s\n' "${FAILED_NAMES[@]}"
		exit 1
	fi
	if [ "$rc" != 0 ]; then
		say "${C_RED}FAILED${C_OFF}: exit status $rc after $CHECKS checks (${took}s)"
		exit "$rc"
	fi
	say "${C_GREEN}passed${C_OFF}: $CHECKS checks (${took}s)"
	exit 0
}

# --- images ---------------------------------------------------------------

# make_rootfs DIR: a busybox-static root filesystem with root, user (1000) and nobody.
make_rootfs() {
	local dir=$1 applet
	mkdir -p "$dir/bin" "$dir/etc" "$dir/tmp" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/root" "$dir/home/user"
	chmod 1777 "$dir/tmp"
	chmod 700 "$dir/root"
	chown 1000:1000 "$dir/home/user"
	cp /bin/busybox "$dir/bin/busybox"
	for applet in $("$dir/bin/busybox" --list); do
		[ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$dir/etc/passwd"
	printf 'root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n' >"$dir/etc/group"
}

# make_rootfs_tar FILE: the same, as a tar archive (for `podman import` or a Dockerfile's ADD).
make_rootfs_tar() {
	make_rootfs "$T/rootfs"
	tar -C "$T/rootfs" -cf "$1" .
	rm -rf "$T/rootfs"
}

# write_containers_conf DIR: a private containers.conf and storage.conf for podman and
# buildah (runtime "rt" = the wrapper, JSON logs for it, $CGROUP_MANAGER, no network,
# storage, temp files and events in DIR); exports CONTAINERS_CONF,
# CONTAINERS_STORAGE_CONF, TMPDIR. With systemd podman passes --systemd-cgroup and
# cgroupsPath machine.slice:libpod:ID (scope libpod-ID.scope in machine.slice).
write_containers_conf() {
	local dir=$1 hn
	hn=$(ulimit -Hn)
	mkdir -p "$dir/tmp" "$dir/networks"
	cat >"$dir/containers.conf" <<EOF
[containers]
# root cannot raise hard rlimits here; podman's defaults for root are 1048576
default_ulimits = ["nofile=$hn:$hn", "nproc=32768:32768"]
netns = "none"

[network]
network_config_dir = "$dir/networks"

[engine]
cgroup_manager = "$CGROUP_MANAGER"
events_logger = "file"
tmp_dir = "$dir/tmp"
runtime = "rt"
# podman passes --log FILE --log-format json only to runtimes listed here
runtime_supports_json = ["rt", "runc", "crun"]

[engine.runtimes]
rt = ["$WRAP"]
EOF
	cat >"$dir/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$dir/storage"
runroot = "$dir/runroot"
EOF
	export CONTAINERS_CONF=$dir/containers.conf CONTAINERS_STORAGE_CONF=$dir/storage.conf TMPDIR=$dir/tmp
	# containers/storage keeps its overlay home bind-mounted on itself until shutdown
	ALLOWED_MOUNTS=("$dir/storage/overlay")
}

# cgroup_file PID CONTROLLER FILE_V1 FILE_V2: path of a cgroup file of the process PID.
cgroup_file() {
	local pid=$1 ctl=$2 v1=$3 v2=$4 path
	path=$(grep -E "^[0-9]+:([^:]*,)?$ctl(,[^:]*)?:" "/proc/$pid/cgroup" | head -1 | cut -d: -f3)
	if [ -n "$path" ] && [ -d "/sys/fs/cgroup/$ctl" ]; then
		echo "/sys/fs/cgroup/$ctl$path/$v1"
	else
		path=$(grep '^0::' "/proc/$pid/cgroup" | cut -d: -f3)
		echo "/sys/fs/cgroup$path/$v2"
	fi
}

# ticks PID: lines in the container's /tmp/ticks (the test loops append one every 0.1 s).
ticks() { wc -l <"/proc/$1/root/tmp/ticks" 2>/dev/null || echo 0; }
