package wizard

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
)

// Check outcomes. skip is a check that could not run because an earlier
// one failed (no login, no facts); its message says which.
const (
	Pass = "pass"
	Warn = "warn"
	Fail = "fail"
	Skip = "skip"
)

// Check is one line of a node's preflight report.
type Check struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// Thresholds of the checks.
const (
	skewWarn     = time.Second
	skewFail     = 30 * time.Second
	diskWarn     = 1 << 30 // below this free, warn even when the artifacts fit
	unpackFactor = 4       // cached tarball + unpacked tree + the previous version kept for rollback
)

// need is what the chosen components require of one node.
type need struct {
	ports       []portNeed
	diskBytes   int64
	hasServices bool
}

// portNeed is a port a component's health check says it listens on.
type portNeed struct {
	component string
	port      int
	host      string // where the check connects: the node's address unless set
}

// needsOf lists what the components placed on node need there.
func needsOf(c *manifests.Cluster, node *manifests.Node, sizes map[string]int64) need {
	var n need
	for i := range c.Spec.Components {
		comp := &c.Spec.Components[i]
		if comp.State == manifests.StateAbsent || !comp.Matches(node) {
			continue
		}
		if comp.Service != nil {
			n.hasServices = true
		}
		if comp.Artifact != nil {
			n.diskBytes += sizes[comp.Name] * unpackFactor
		}
		if host, port := comp.Health.Endpoint(); port > 0 {
			n.ports = append(n.ports, portNeed{comp.Name, port, orElse(host, node.Address)})
		}
	}
	return n
}

func hostKeyCheck(v visit, hostport string) (c Check) {
	c = Check{Name: "host key"}
	if v.key == nil {
		c.Status, c.Message = Skip, "no key seen: the SSH handshake did not get that far"
		return c
	}
	fp := v.key.Type() + " " + ssh.FingerprintSHA256(v.key)
	if v.keyHostPort != "" && v.keyHostPort != hostport && v.keyStatus != KeyKnown {
		// A jump host on the way presented it: that key is the one to confirm.
		hostport = v.keyHostPort
		defer func() { c.Message = "jump host " + hostport + ": " + c.Message }()
	}
	switch {
	case v.keyStatus == KeyKnown:
		c.Status, c.Message = Pass, v.key.Type()+" key is in known_hosts"
	case v.keyStatus == KeyUnknown:
		c.Status, c.Message = Warn, fmt.Sprintf("%s is not in known_hosts yet: compare it with `ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub` run on the node, then accept it",
			v.key.Type(), inventory.KeyFileKind(v.key))
	case v.keyStatus == KeyChanged:
		c.Status, c.Message = Fail, fmt.Sprintf("host key CHANGED: %s now presents %s but known_hosts holds %s. This may be a man-in-the-middle attack; if the node was reinstalled, check the new key on it and remove the old one with ssh-keygen -R.",
			hostport, fp, strings.Join(v.knownKeys, ", "))
	case v.keyStatus == KeyRevoked:
		c.Status, c.Message = Fail, fp+" is marked @revoked in known_hosts"
	}
	return c
}

func reachableCheck(v visit, hostport string) Check {
	c := Check{Name: "reachable"}
	switch {
	case v.connErr != nil:
		c.Status, c.Message = Fail, fmt.Sprintf("cannot reach %s over SSH: %v", hostport, v.connErr)
	default:
		c.Status, c.Message = Pass, "SSH server answers on "+hostport
	}
	return c
}

// loginCheck says whether the facts could be gathered; ok is true when
// the remaining checks can run on them.
func loginCheck(v visit, user string) (Check, bool) {
	c := Check{Name: "login"}
	switch {
	case v.connErr != nil:
		c.Status, c.Message = Skip, "not reachable"
	case v.key != nil && v.keyStatus != KeyKnown:
		c.Status, c.Message = Skip, "waits for a trusted host key: nothing is sent to a host before its key is accepted"
	case v.authErr != nil:
		c.Status, c.Message = Fail, fmt.Sprintf("%s cannot log in with the key: %v", user, v.authErr)
	case v.sudoErr != nil:
		c.Status, c.Message = Fail, v.sudoErr.Error()
	case v.runErr != nil:
		c.Status, c.Message = Fail, fmt.Sprintf("running the preflight script: %v", v.runErr)
	case v.exitCode != 0:
		c.Status, c.Message = Fail, fmt.Sprintf("the preflight script exited %d: %s", v.exitCode, clip(v.stderr))
	default:
		c.Status, c.Message = Pass, "logged in as "+user
		if user != "root" {
			c.Message += "; sudo -n works"
		}
		return c, true
	}
	return c, false
}

func osCheck(f Facts) Check {
	c := Check{Name: "os"}
	desc := strings.TrimSpace(fmt.Sprintf("%s %s", f.OSID, f.OSVersion))
	if f.OSName != "" {
		desc = fmt.Sprintf("%s (%s)", f.OSName, desc)
	}
	switch {
	case f.Kernel != "Linux":
		c.Status, c.Message = Fail, fmt.Sprintf("kernel %q: drover manages Linux nodes", f.Kernel)
	case f.OSID == "":
		c.Status, c.Message = Warn, "no /etc/os-release; arch "+f.Arch
	default:
		c.Status, c.Message = Pass, desc+", "+f.Arch
	}
	return c
}

func systemdCheck(f Facts, n need) Check {
	c := Check{Name: "systemd"}
	running := f.PID1 == "systemd"
	switch {
	case running && f.Systemctl != "":
		c.Status, c.Message = Pass, "systemd is PID 1; "+f.Systemctl
	case n.hasServices:
		c.Status, c.Message = Fail, fmt.Sprintf("PID 1 is %q, systemctl %q: the chosen services run as systemd units", f.PID1, f.Systemctl)
	default:
		c.Status, c.Message = Warn, fmt.Sprintf("PID 1 is %q: fine for files only, but services need systemd", f.PID1)
	}
	return c
}

func diskCheck(f Facts, n need) Check {
	c := Check{Name: "disk"}
	switch {
	case f.DiskFreeBytes < 0:
		c.Status, c.Message = Warn, fmt.Sprintf("free space under %s unknown: %s", orElse(f.DiskPath, "the install root"), f.DiskError)
	case f.DiskFreeBytes < n.diskBytes:
		c.Status, c.Message = Fail, fmt.Sprintf("%s free under %s, the chosen artifacts need about %s", bytesText(f.DiskFreeBytes), f.DiskPath, bytesText(n.diskBytes))
	case f.DiskFreeBytes < diskWarn:
		c.Status, c.Message = Warn, fmt.Sprintf("only %s free under %s", bytesText(f.DiskFreeBytes), f.DiskPath)
	default:
		c.Status, c.Message = Pass, fmt.Sprintf("%s free under %s (about %s needed)", bytesText(f.DiskFreeBytes), f.DiskPath, bytesText(n.diskBytes))
	}
	return c
}

// portsCheck fails for a port someone already listens on at the address
// the component will use (or on every address), and warns for one taken
// on another address of the node: fine when the component binds to its
// node's address, as the templates do, a clash when it binds to all.
func portsCheck(f Facts, n need) Check {
	c := Check{Name: "ports"}
	if len(n.ports) == 0 {
		c.Status, c.Message = Pass, "no component on this node declares a port"
		return c
	}
	var fails, warns, free []string
	for _, p := range n.ports {
		want := net.ParseIP(p.host)
		var same, other []string
		for _, l := range f.Listeners {
			if l.Port != p.port {
				continue
			}
			switch {
			case l.IP.IsUnspecified() || (want != nil && l.IP.Equal(want)):
				same = append(same, l.IP.String())
			default:
				other = append(other, l.IP.String())
			}
		}
		what := fmt.Sprintf("%d (%s)", p.port, p.component)
		switch {
		case len(same) > 0:
			fails = append(fails, fmt.Sprintf("%s is in use on %s", what, strings.Join(uniq(same), ", ")))
		case len(other) > 0:
			warns = append(warns, fmt.Sprintf("%s is in use on %s", what, strings.Join(uniq(other), ", ")))
		default:
			free = append(free, what)
		}
	}
	msg := strings.Join(append(fails, warns...), "; ")
	if len(free) > 0 {
		if msg != "" {
			msg += "; "
		}
		msg += "free: " + strings.Join(free, ", ")
	}
	switch {
	case len(fails) > 0:
		c.Status = Fail
	case len(warns) > 0:
		c.Status = Warn
		msg += " (a clash only if the component listens on all addresses)"
	default:
		c.Status = Pass
	}
	c.Message = msg
	return c
}

func clockCheck(samples []clockSample) Check {
	c := Check{Name: "clock"}
	skew, rtt, ok := clockSkew(samples)
	if !ok {
		c.Status, c.Message = Warn, "the node's clock could not be read"
		return c
	}
	abs := skew
	if abs < 0 {
		abs = -abs
	}
	msg := fmt.Sprintf("node clock is %+.3fs from this host's (round trip %s)", skew.Seconds(), rtt.Round(time.Millisecond))
	switch {
	case abs > skewFail:
		c.Status, c.Message = Fail, msg+": set up NTP on the node"
	case abs > skewWarn:
		c.Status, c.Message = Warn, msg+": consider NTP"
	default:
		c.Status, c.Message = Pass, msg
	}
	return c
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func clip(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

func orElse(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func uniq(in []string) []string {
	sort.Strings(in)
	out := in[:0]
	for i, s := range in {
		if i == 0 || s != in[i-1] {
			out = append(out, s)
		}
	}
	return out
}
