package wizard

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/drover-project/drover/inventory"
)

// factsMagic opens the facts script's output, so a login banner or a shell
// that printed something else is never mistaken for facts.
const factsMagic = "drover-preflight 1"

// clockSamples is how many times preflight reads the node's clock.
const clockSamples = 3

// factsScript is the one POSIX sh script preflight runs on a node. After
// the magic line it reads the node's clock clockSamples times, each time
// when a newline arrives on stdin, so that the round trip of each reading
// is known (see visitNode); then it prints sections opened by "@@ name"
// lines in a fixed order. It changes nothing and needs no privilege; only
// the install root is interpolated, and quoted.
func factsScript(installRoot string) string {
	return `LC_ALL=C; export LC_ALL
echo ` + factsMagic + `
n=0
while [ "$n" -lt ` + strconv.Itoa(clockSamples) + ` ] && read -r _; do date +%s.%N; n=$((n+1)); done
echo "@@ facts"
echo "kernel $(uname -s 2>/dev/null)"
echo "arch $(uname -m 2>/dev/null)"
echo "pid1 $(cat /proc/1/comm 2>/dev/null)"
echo "systemctl $(command -v systemctl 2>/dev/null)"
echo "@@ os-release"
cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
echo "@@ df"
p=` + inventory.Quote(installRoot) + `
while [ ! -d "$p" ] && [ "$p" != / ]; do p=$(dirname "$p"); done
echo "$p"
df -Pk "$p" 2>&1
echo "@@ tcp"
cat /proc/net/tcp 2>/dev/null
echo "@@ tcp6"
cat /proc/net/tcp6 2>/dev/null
echo "@@ end"
`
}

// Facts is what preflight learnt about a node.
type Facts struct {
	Kernel    string `json:"kernel"`
	Arch      string `json:"arch"`
	OSID      string `json:"osID"`
	OSVersion string `json:"osVersion"`
	OSName    string `json:"osName"`
	PID1      string `json:"pid1"`
	Systemctl string `json:"systemctl"`
	// DiskPath is the install root or its nearest existing parent;
	// DiskFreeBytes what df says is available there (-1: unknown).
	DiskPath      string `json:"diskPath"`
	DiskFreeBytes int64  `json:"diskFreeBytes"`
	DiskError     string `json:"diskError,omitempty"`
	// Listeners are the node's listening TCP sockets.
	Listeners []Listener `json:"listeners"`
}

// Listener is one listening TCP socket.
type Listener struct {
	IP   net.IP `json:"ip"`
	Port int    `json:"port"`
}

// parseFacts reads the facts script's output after its clock readings.
// It is strict about the frame (every section in order, the end marker),
// so that a cut-off or foreign output is an error, and lenient inside a
// section only where the node may lack something (no os-release, no tcp6).
func parseFacts(out string) (Facts, error) {
	f := Facts{DiskFreeBytes: -1}
	sections, err := splitSections(out)
	if err != nil {
		return f, err
	}
	for _, line := range sections[0].body {
		key, val, _ := strings.Cut(line, " ")
		switch key {
		case "kernel":
			f.Kernel = val
		case "arch":
			f.Arch = val
		case "pid1":
			f.PID1 = val
		case "systemctl":
			f.Systemctl = val
		default:
			return f, fmt.Errorf("facts: unexpected line %q", line)
		}
	}
	osr := parseOSRelease(sections[1].body)
	f.OSID, f.OSVersion, f.OSName = osr["ID"], osr["VERSION_ID"], osr["PRETTY_NAME"]
	f.DiskPath, f.DiskFreeBytes, f.DiskError = parseDF(sections[2].body)
	for _, sec := range sections[3:5] {
		ls, err := parseProcNetTCP(sec.body)
		if err != nil {
			return f, fmt.Errorf("%s: %w", sec.name, err)
		}
		f.Listeners = append(f.Listeners, ls...)
	}
	return f, nil
}

type section struct {
	name string
	body []string
}

// factsSections is the order the script prints its sections in.
var factsSections = []string{"facts", "os-release", "df", "tcp", "tcp6", "end"}

func splitSections(out string) ([]section, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var secs []section
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if name, ok := strings.CutPrefix(line, "@@ "); ok {
			if len(secs) >= len(factsSections) || name != factsSections[len(secs)] {
				return nil, fmt.Errorf("unexpected section %q", name)
			}
			secs = append(secs, section{name: name})
			continue
		}
		if len(secs) == 0 {
			return nil, fmt.Errorf("line %q before the first section", line)
		}
		secs[len(secs)-1].body = append(secs[len(secs)-1].body, line)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(secs) != len(factsSections) {
		return nil, fmt.Errorf("output cut short: %d of %d sections", len(secs), len(factsSections))
	}
	if len(secs[len(secs)-1].body) != 0 {
		return nil, fmt.Errorf("output after the end marker")
	}
	return secs, nil
}

// parseClock reads `date +%s.%N`. A date without %N support prints a
// literal "N" (busybox) or "%N": the whole seconds are still used.
func parseClock(line string) (time.Time, error) {
	s := strings.TrimSpace(line)
	secStr, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secStr, 10, 64)
	if err != nil || sec <= 0 {
		return time.Time{}, fmt.Errorf("%q is not a Unix time", s)
	}
	var nsec int64
	if frac != "" && strings.Trim(frac, "0123456789") == "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		frac += strings.Repeat("0", 9-len(frac))
		nsec, _ = strconv.ParseInt(frac, 10, 64)
	}
	return time.Unix(sec, nsec), nil
}

// parseOSRelease reads os-release(5): KEY=value with shell quoting.
func parseOSRelease(body []string) map[string]string {
	out := map[string]string{}
	for _, line := range body {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
			if line[len(k)+1] == '"' {
				v = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`, "\\`", "`").Replace(v)
			}
		}
		out[k] = v
	}
	return out
}

// parseDF reads the directory line then `df -Pk DIR`: a header and one
// line whose fourth field is the available 1024-byte blocks.
func parseDF(body []string) (path string, free int64, problem string) {
	if len(body) == 0 {
		return "", -1, "no output"
	}
	path = body[0]
	rest := body[1:]
	if len(rest) != 2 || !strings.HasPrefix(rest[0], "Filesystem") {
		return path, -1, "df: " + strings.Join(rest, " ")
	}
	fields := strings.Fields(rest[1])
	if len(fields) < 6 {
		return path, -1, fmt.Sprintf("df: unexpected line %q", rest[1])
	}
	kb, err := strconv.ParseInt(fields[3], 10, 64)
	if err != nil || kb < 0 {
		return path, -1, fmt.Sprintf("df: available %q is not a number", fields[3])
	}
	return path, kb * 1024, ""
}

// tcpListen is the st column of a listening socket in /proc/net/tcp.
const tcpListen = "0A"

// parseProcNetTCP reads /proc/net/tcp or tcp6 and returns the listening
// sockets. Addresses are hex, in the kernel's byte order: each 32-bit
// word is little-endian on the machines drover runs on (x86, arm64).
func parseProcNetTCP(body []string) ([]Listener, error) {
	var out []Listener
	for i, line := range body {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if i == 0 && fields[0] == "sl" {
			continue
		}
		if len(fields) < 4 {
			return nil, fmt.Errorf("short line %q", line)
		}
		if fields[3] != tcpListen {
			continue
		}
		ip, port, err := parseHexAddr(fields[1])
		if err != nil {
			return nil, fmt.Errorf("line %q: %w", line, err)
		}
		out = append(out, Listener{IP: ip, Port: port})
	}
	return out, nil
}

func parseHexAddr(s string) (net.IP, int, error) {
	hexIP, hexPort, ok := strings.Cut(s, ":")
	if !ok || (len(hexIP) != 8 && len(hexIP) != 32) || len(hexPort) != 4 {
		return nil, 0, fmt.Errorf("bad address %q", s)
	}
	raw, err := hex.DecodeString(hexIP)
	if err != nil {
		return nil, 0, fmt.Errorf("bad address %q", s)
	}
	ip := make(net.IP, len(raw))
	for w := 0; w < len(raw); w += 4 {
		ip[w], ip[w+1], ip[w+2], ip[w+3] = raw[w+3], raw[w+2], raw[w+1], raw[w]
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return nil, 0, fmt.Errorf("bad port in %q", s)
	}
	return ip, int(port), nil
}

// clockSample is one reading of the node's clock: sent and received are
// our clock when we asked and when the answer arrived.
type clockSample struct {
	sent, node, received time.Time
}

// clockSkew is the node's clock minus ours, from the reading with the
// shortest round trip (the one least delayed on either leg), taking the
// node's reading to be halfway through it.
func clockSkew(samples []clockSample) (skew, roundTrip time.Duration, ok bool) {
	for i, s := range samples {
		rtt := s.received.Sub(s.sent)
		if i == 0 || rtt < roundTrip {
			roundTrip = rtt
			skew = s.node.Sub(s.sent) - rtt/2
		}
	}
	return skew, roundTrip, len(samples) > 0
}
