package probes

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
)

// FormatVersion is the version of the probe output format: the first line
// of the output is "drover-probe <FormatVersion>". Bump it on any change a
// parser of the previous version would misread.
const FormatVersion = 2

// scriptPrelude is the fixed part of the probe script: function
// definitions only, so a resident shell runs it once (inventory.Pool.Query's
// prelude). The functions expect what scriptHead sets. They run under dash
// and busybox ash, so: no bashisms, no arrays, no `local`. Globbing is off
// except where a loop needs it.
//
// Every process costs the node a fork and an exec (3 to 5 ms of CPU each
// on a small VM, more than all the shell code), so the script starts as
// few as it can: stat, sha256sum and systemctl once per probe, not once
// per component or file; receipts and the hostname are read with the
// shell's own read; readlink only for a dangling active link; exec health
// commands under timeout. A resident shell (inventory.Pool.Query) keeps
// the dp_* variables from one probe to the next: uname runs once per
// shell (the architecture cannot change without a reboot, which ends the
// shell) and df once every ten probes. Every other variable the script
// reads, it sets first.
const scriptPrelude = `# dp_p WORD...: one line of output, the words joined by spaces. Lines are
# kept in dp_o and handed over once, at the end, in dq_out (see
# inventory.Pool.Query): one write, which sshd sends as one packet, where a
# printf per line costs it (and drover) one each.
dp_p() { dp_o="$dp_o$*$nl"; }

# dp_tok VALUE: v is VALUE when it is a safe one-word token, else "-".
dp_tok() {
	v=$1
	case $v in ''|.*|*[!A-Za-z0-9._+~-]*) v=- ;; esac
}

# dp_unquote VALUE: v is an os-release VALUE without its quotes, as a token.
dp_unquote() {
	v=$1
	case $v in \"*\") v=${v#\"}; v=${v%\"} ;; \'*\') v=${v#\'}; v=${v%\'} ;; esac
	dp_tok "$v"
}

# dp_facts: the os line. os-release is parsed, never sourced: it is
# data, not code.
dp_facts() {
	os_id= os_ver=
	osr=/etc/os-release
	[ -r "$osr" ] || osr=/usr/lib/os-release
	if [ -r "$osr" ]; then
		while IFS= read -r l || [ -n "$l" ]; do
			case $l in
			ID=*) os_id=${l#ID=} ;;
			VERSION_ID=*) os_ver=${l#VERSION_ID=} ;;
			esac
		done <"$osr"
	fi
	dp_unquote "$os_id"; os_id=$v
	dp_unquote "$os_ver"; os_ver=$v
	host=
	read -r host 2>/dev/null </proc/sys/kernel/hostname || host=$(uname -n 2>/dev/null)
	dp_tok "$host"; host=$v
	[ -n "${dp_arch-}" ] || dp_arch=$(uname -m 2>/dev/null) || dp_arch=
	dp_tok "$dp_arch"; arch=$v
	d=$root/cache
	while [ ! -d "$d" ]; do
		case $d in */*) d=${d%/*}; d=${d:-/} ;; *) d=/ ;; esac
	done
	# Free space where artifacts are uploaded (the plan says when one will
	# not fit); df is a process of its own, so a resident shell runs it on
	# every tenth probe of the same dir only.
	dp_dfn=$(( ${dp_dfn:-0} % 10 + 1 ))
	if [ "$dp_dfn" = 1 ] || [ "${dp_dfdir-}" != "$d" ]; then
		dp_dfn=1 dp_dfdir=$d
		set -- $(df -Pk "$d" 2>/dev/null)
		dp_free=-
		case $#:${11}:${12} in 13:*:*%|1[4-9]:*:*%) dp_free=${11} ;; esac
		case $dp_free in ''|*[!0-9]*) dp_free=- ;; *) dp_free=$((dp_free * 1024)) ;; esac
	fi
	dp_p os "id=$os_id" "version_id=$os_ver" "arch=$arch" "hostname=$host" "free=$dp_free"
}

# dp_discover WANTED: extra lists the components that have a receipt but
# are not among the space-separated WANTED names.
dp_discover() {
	extra=
	set +f
	set -- "$root"/receipts/*.json
	set -f
	for r; do
		n=${r##*/}; n=${n%.json}
		case $n in ''|[!a-z0-9]*|*[!a-z0-9._-]*) continue ;; esac
		[ -e "$r" ] || continue
		case " $dp_wanted " in *" $n "*) continue ;; esac
		extra="$extra $n"
	done
}

# dp_hash PATH...: one sha256sum for every file of the probe. Missing
# files print nothing; dp_sum takes the lines back in the same order.
dp_hash() {
	sums=$nl
	[ $# -gt 0 ] && sums=$(sha256sum "$@" 2>/dev/null)$nl
}

# dp_modes PATH...: one stat for every wanted file, read back by dp_mode.
dp_modes() {
	modes=$nl
	[ $# -gt 0 ] && modes=$(stat -L -c '%a %n' "$@" 2>/dev/null)$nl
}

# dp_show UNIT...: one systemctl for every unit of interest; no systemctl
# (or no systemd running) leaves every unit's state unknown.
dp_show() {
	svc=
	if [ $# -gt 0 ] && command -v systemctl >/dev/null 2>&1; then
		svc=$(systemctl show -p Id -p ActiveState -p SubState -p UnitFileState "$@" 2>/dev/null)
	fi
}

# dp_sum PATH: h is PATH's sha256 when it is the next line of $sums.
dp_sum() {
	h= l=${sums%%"$nl"*}
	if [ -n "$l" ] && [ "${l#*"  "}" = "$1" ]; then
		h=${l%%"  "*}
		sums=${sums#*"$nl"}
	fi
}

# dp_mode PATH: m is PATH's octal mode when it is the next line of $modes.
dp_mode() {
	m= l=${modes%%"$nl"*}
	if [ -n "$l" ] && [ "${l#* }" = "$1" ]; then
		m=${l%% *}
		modes=${modes#*"$nl"}
	fi
}

# dp_unit UNIT: ua, us, ue are UNIT's ActiveState, SubState and enabled
# flag from the block of $svc whose Id is UNIT.
dp_unit() {
	ua=unknown us=unknown ue=0
	rest=$svc$nl$nl
	while [ -n "$rest" ]; do
		b=$nl${rest%%"$nl$nl"*}$nl
		rest=${rest#*"$nl$nl"}
		case $b in *"${nl}Id=$1$nl"*) ;; *) continue ;; esac
		case $b in *"${nl}ActiveState="*) ua=${b#*"${nl}ActiveState="}; ua=${ua%%"$nl"*} ;; esac
		case $b in *"${nl}SubState="*) us=${b#*"${nl}SubState="}; us=${us%%"$nl"*} ;; esac
		case $b in *"${nl}UnitFileState=enabled$nl"*|*"${nl}UnitFileState=enabled-runtime$nl"*) ue=1 ;; esac
		break
	done
	case $ua in ''|*[!a-z-]*) ua=unknown ;; esac
	case $us in ''|*[!a-z-]*) us=unknown ;; esac
}

# dp_begin NAME: the component line, its receipt, active link and packages.
dp_begin() {
	dp_p component "$1"
	dp_receipt "$1"
	dp_packages "$1"
}

# dp_receipt NAME: the receipt, one "receipt = LINE" per line of the
# file; "-" when there is none, "!" when it is there but empty or could
# not be read. rcpt is 1 when a receipt file exists.
dp_receipt() {
	rf=$root/receipts/$1.json
	rcpt=1
	if [ -f "$rf" ]; then
		b=0
		while IFS= read -r l || [ -n "$l" ]; do
			dp_p receipt = "$l"
			b=1
		done 2>/dev/null <"$rf"
		[ "$b" = 1 ] || dp_p receipt !
	elif [ -e "$rf" ]; then
		dp_p receipt !
	else
		rcpt=0
		dp_p receipt -
	fi
}

# dp_packages NAME: where the active link points, then each version dir
# and whether its .complete marker is there. The link is matched to a
# version dir with test -ef (no fork); readlink only for a dangling one.
dp_packages() {
	a=$root/active/$1 act=- pk=
	set +f
	set -- "$root/packages/$1"/*
	set -f
	for p; do
		[ -d "$p" ] || continue
		dp_tok "${p##*/}"
		[ "$v" = - ] && continue
		if [ -e "$p/.complete" ]; then c=complete; else c=incomplete; fi
		pk="${pk}package $v $c$nl"
		[ -L "$a" ] && [ "$a" -ef "$p" ] && act=$v
	done
	if [ -L "$a" ]; then
		if [ "$act" = - ]; then
			t=$(readlink "$a" 2>/dev/null) || t=
			while :; do case $t in */) t=${t%/} ;; *) break ;; esac; done
			dp_tok "${t##*/}"
			act=$v
			[ "$act" = - ] && act=!
		fi
	elif [ -e "$a" ]; then
		act=!
	fi
	dp_o="${dp_o}active $act$nl$pk"
}

# dp_file PATH: the file's mode and sha256, or missing, or error when it
# is a regular file that could not be read.
dp_file() {
	dp_sum "$1"
	dp_mode "$1"
	if [ -n "$h" ] && [ -n "$m" ]; then
		dp_p file "$m" "$h" "$1"
	elif [ -f "$1" ]; then
		dp_p file error "$1"
	else
		dp_p file missing "$1"
	fi
}

# dp_unitline NAME WANT: the unit line, when the component should have a
# service (WANT=1) or its unit file is there.
dp_unitline() {
	uf=$units/drover-$1.service
	dp_sum "$uf"
	if [ -n "$h" ]; then ux=1; elif [ -e "$uf" ]; then ux=1 h=-; else ux=0 h=-; fi
	dp_unit "drover-$1.service"
	if [ "$2" = 1 ] || [ "$ux" = 1 ]; then
		dp_p unit "exists=$ux" "hash=$h" "active=$ua" "sub=$us" "enabled=$ue"
	fi
}

# dp_exec KIND SECONDS ARGV...: runs the health or leader command under
# timeout (from /: the script cd'd there first).
dp_exec() {
	k=$1 s=$2
	shift 2
	if command -v timeout >/dev/null 2>&1; then
		timeout -k 2 "$s" "$@" </dev/null >/dev/null 2>&1
		rc=$?
	else
		rc=127
	fi
	if [ "$rc" = 0 ]; then
		dp_p "$k" exec ok 0
	else
		dp_p "$k" exec fail "$rc"
	fi
}
`

// scriptHead starts every probe: the options and variables the prelude's
// functions rely on, the format line and the os line.
const scriptHead = `set -f
unset IFS
LC_ALL=C
export LC_ALL
cd / || exit 1
nl='
'
dp_o=
dp_p drover-probe 2
dp_facts
`

// Script is the whole probe script for one node, as one script for Run.
func Script(req Request) (string, error) {
	body, err := scriptBody(req)
	if err != nil {
		return "", err
	}
	return inventory.OneScript(scriptPrelude, body), nil
}

// scriptBody is the probe script for one node that runs after
// scriptPrelude. Every value from the request is validated and
// shell-quoted; the output is described in parse.go.
func scriptBody(req Request) (string, error) {
	if err := checkRequest(req); err != nil {
		return "", err
	}
	units := req.UnitDir
	if units == "" {
		units = DefaultUnitDir
	}
	var b strings.Builder
	b.Grow(1024)
	fmt.Fprintf(&b, "root=%s\nunits=%s\n", inventory.Quote(req.InstallRoot), inventory.Quote(units))
	b.WriteString(scriptHead)

	names := make([]string, len(req.Components))
	for i, w := range req.Components {
		names[i] = w.Name
	}
	fmt.Fprintf(&b, "dp_wanted=%s\ndp_discover\n", inventory.Quote(strings.Join(names, " ")))

	// Each path is written once, into a variable, to keep the script
	// short (it may travel as one argv string, limited to 128 KiB). Then
	// one stat of every wanted file, and one sha256sum of every wanted
	// file and unit file, in the exact order the blocks below read them.
	fileVar := make([][]string, len(req.Components))
	nfiles := 0
	for i, w := range req.Components {
		for _, f := range w.Files {
			nfiles++
			v := "dp_f" + strconv.Itoa(nfiles)
			fmt.Fprintf(&b, "%s=%s\n", v, inventory.Quote(f))
			fileVar[i] = append(fileVar[i], `"$`+v+`"`)
		}
	}
	b.WriteString("set --")
	for i := range req.Components {
		for _, v := range fileVar[i] {
			b.WriteString(" " + v)
		}
	}
	b.WriteString("\ndp_modes \"$@\"\nset --")
	for i, w := range req.Components {
		for _, v := range fileVar[i] {
			b.WriteString(" " + v)
		}
		fmt.Fprintf(&b, ` "$units"/drover-%s.service`, w.Name)
	}
	b.WriteString("\nfor n in $extra; do set -- \"$@\" \"$units/drover-$n.service\"; done\ndp_hash \"$@\"\n")

	// systemctl for the units wanted and any unit file that is there.
	b.WriteString("set --")
	var maybe []string
	for _, w := range req.Components {
		if w.Service {
			fmt.Fprintf(&b, " drover-%s.service", w.Name)
		} else {
			maybe = append(maybe, w.Name)
		}
	}
	fmt.Fprintf(&b, "\nfor n in %s $extra; do [ -f \"$units/drover-$n.service\" ] && set -- \"$@\" \"drover-$n.service\"; done\ndp_show \"$@\"\n",
		strings.Join(maybe, " "))

	for i, w := range req.Components {
		fmt.Fprintf(&b, "dp_begin %s\n", w.Name)
		for _, v := range fileVar[i] {
			fmt.Fprintf(&b, "dp_file %s\n", v)
		}
		svc := "0"
		if w.Service {
			svc = "1"
		}
		fmt.Fprintf(&b, "dp_unitline %s %s\n", w.Name, svc)
		// Exec checks run only where they mean something: a running
		// service, or an installed files-only component.
		cond := `[ "$rcpt" = 1 ]`
		if w.Service {
			cond = `[ "$ua" = active ]`
		}
		for _, c := range []struct {
			kind string
			h    *manifests.Health
		}{{"health", w.Health}, {"leader", w.Leader}} {
			if !inScript(c.h) {
				continue
			}
			fmt.Fprintf(&b, "if %s; then dp_exec %s %d", cond, c.kind, timeoutSeconds(c.h))
			for _, a := range c.h.Exec.Command {
				b.WriteString(" " + inventory.Quote(a))
			}
			b.WriteString("; fi\n")
		}
		b.WriteString("dp_p end\n")
	}
	b.WriteString("for n in $extra; do dp_begin \"$n\"; dp_unitline \"$n\" 0; dp_p end; done\ndp_p done\ndq_out=$dp_o\n")
	return b.String(), nil
}

// checkRequest refuses what the script could not carry safely. The
// manifest is validated on load; this is the last line of defence before
// a remote shell.
func checkRequest(req Request) error {
	if err := checkPath("install root", req.InstallRoot); err != nil {
		return err
	}
	if req.UnitDir != "" {
		if err := checkPath("unit dir", req.UnitDir); err != nil {
			return err
		}
	}
	seen := make(map[string]bool, len(req.Components))
	for _, w := range req.Components {
		if !manifests.IsName(w.Name) {
			return fmt.Errorf("component name %q: must match %s", w.Name, manifests.NamePattern)
		}
		if seen[w.Name] {
			return fmt.Errorf("component %s: listed twice", w.Name)
		}
		seen[w.Name] = true
		for _, f := range w.Files {
			if err := checkPath("component "+w.Name+" file", f); err != nil {
				return err
			}
		}
		for _, c := range []struct {
			what string
			h    *manifests.Health
		}{{"health", w.Health}, {"leader", w.Leader}} {
			if c.h == nil {
				continue
			}
			chk, err := checkerFor(c.h)
			switch {
			case err != nil:
				return fmt.Errorf("component %s: %s check: %w", w.Name, c.what, err)
			case c.what == "leader" && !chk.inScript:
				return fmt.Errorf("component %s: leader check must be exec", w.Name)
			case chk.request != nil:
				if err := chk.request(w.Name, c.what, c.h); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// checkExec refuses an exec check the script could not run as asked.
func checkExec(comp, what string, h *manifests.Health) error {
	if len(h.Exec.Command) == 0 {
		return fmt.Errorf("component %s: %s exec command is empty", comp, what)
	}
	for _, a := range h.Exec.Command {
		if !manifests.GoodExecArg(a) {
			return fmt.Errorf("component %s: %s exec argument contains NUL", comp, what)
		}
	}
	return nil
}

// checkPath refuses paths goodPath would not accept.
func checkPath(what, p string) error {
	if !goodPath(p) {
		return fmt.Errorf("%s %q: must be an absolute path without control characters or backslashes", what, p)
	}
	return nil
}

// goodPath accepts absolute paths without control characters or
// backslashes: sha256sum escapes those in its output, which would break
// the one-line-per-file protocol.
func goodPath(p string) bool { return manifests.GoodNodePath(p) }
