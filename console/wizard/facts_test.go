package wizard

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func readFacts(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/facts-debian.txt")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseFacts(t *testing.T) {
	f, err := parseFacts(readFacts(t))
	if err != nil {
		t.Fatal(err)
	}
	if f.Kernel != "Linux" || f.Arch != "x86_64" || f.PID1 != "systemd" || f.Systemctl != "/usr/bin/systemctl" {
		t.Errorf("facts: %+v", f)
	}
	if f.OSID != "debian" || f.OSVersion != "12" || f.OSName != "Debian GNU/Linux 12 (bookworm)" {
		t.Errorf("os: %q %q %q", f.OSID, f.OSVersion, f.OSName)
	}
	if f.DiskPath != "/opt" || f.DiskFreeBytes != 36123456*1024 {
		t.Errorf("disk: %q %d", f.DiskPath, f.DiskFreeBytes)
	}
	var ls []string
	for _, l := range f.Listeners {
		ls = append(ls, l.IP.String()+"/"+strconv.Itoa(l.Port))
	}
	// The established connection (st 01) is not a listener.
	want := "127.0.2.1/22 0.0.0.0/9091 127.0.2.2/9100 ::/2181 127.0.2.1/9092"
	if got := strings.Join(ls, " "); got != want {
		t.Errorf("listeners %s, want %s", got, want)
	}
}

func TestParseFactsRefusesBrokenOutput(t *testing.T) {
	good := readFacts(t)
	for name, out := range map[string]string{
		"empty":            "",
		"banner first":     "Welcome!\n" + good,
		"magic again":      "drover-preflight 1\n" + good,
		"cut short":        good[:strings.Index(good, "@@ tcp6")],
		"no end":           strings.TrimSuffix(good, "@@ end\n"),
		"sections swapped": strings.Replace(strings.Replace(good, "@@ df", "@@ XX", 1), "@@ os-release", "@@ df", 1),
		"after the end":    good + "junk\n",
		"unknown fact":     strings.Replace(good, "arch x86_64", "arch x86_64\nmystery 1", 1),
		"bad socket":       strings.Replace(good, "0202007F:238C", "0202007F238C", 1),
	} {
		if _, err := parseFacts(out); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

func TestParseFactsLenientInside(t *testing.T) {
	// A node without os-release or tcp6, and with a df that failed: facts
	// still come back, with what is missing marked.
	out := readFacts(t)
	out = replaceSection(out, "os-release", "")
	out = replaceSection(out, "tcp6", "")
	out = replaceSection(out, "df", "/opt\ndf: /opt: Permission denied\n")
	f, err := parseFacts(out)
	if err != nil {
		t.Fatal(err)
	}
	if f.OSID != "" || f.DiskFreeBytes != -1 || !strings.Contains(f.DiskError, "Permission denied") {
		t.Errorf("facts: %+v", f)
	}
	if c := osCheck(f); c.Status != Warn {
		t.Errorf("os without os-release: %+v", c)
	}
	if c := diskCheck(f, need{}); c.Status != Warn {
		t.Errorf("disk unknown: %+v", c)
	}
}

// replaceSection swaps the body of the first section called name.
func replaceSection(out, name, body string) string {
	start := strings.Index(out, "@@ "+name+"\n") + len("@@ "+name+"\n")
	end := start + strings.Index(out[start:], "@@ ")
	return out[:start] + body + out[end:]
}

func TestParseClock(t *testing.T) {
	for in, want := range map[string]time.Time{
		"1700000000.250000000\n": time.Unix(1700000000, 250000000),
		"1700000000.25\n":        time.Unix(1700000000, 250000000),
		"1700000000.N\n":         time.Unix(1700000000, 0), // busybox date: no %N
		"1700000000.%N\n":        time.Unix(1700000000, 0),
	} {
		got, err := parseClock(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "Tue Nov 14 10:00:00 UTC 2023", "-5.0", "17e8"} {
		if _, err := parseClock(in); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
}

func TestClockSkew(t *testing.T) {
	base := time.Unix(1700000000, 0)
	sample := func(at, rtt, ahead time.Duration) clockSample {
		return clockSample{sent: base.Add(at), node: base.Add(at + rtt/2 + ahead), received: base.Add(at + rtt)}
	}
	// The node is 2s ahead; the 80ms reading is the one to trust, the
	// slow ones were delayed on one leg (their node time is off).
	samples := []clockSample{
		{sent: base, node: base.Add(2*time.Second + 290*time.Millisecond), received: base.Add(300 * time.Millisecond)},
		sample(time.Second, 80*time.Millisecond, 2*time.Second),
		{sent: base.Add(2 * time.Second), node: base.Add(4*time.Second + 10*time.Millisecond), received: base.Add(2*time.Second + 200*time.Millisecond)},
	}
	skew, rtt, ok := clockSkew(samples)
	if !ok || skew != 2*time.Second || rtt != 80*time.Millisecond {
		t.Errorf("skew %v rtt %v, want 2s 80ms", skew, rtt)
	}
	if _, _, ok := clockSkew(nil); ok {
		t.Error("no samples gave a skew")
	}
	if c := clockCheck(nil); c.Status != Warn {
		t.Errorf("clock check without readings: %+v", c)
	}
	if c := clockCheck([]clockSample{sample(0, 10*time.Millisecond, -3*time.Second)}); c.Status != Warn || !strings.Contains(c.Message, "-3.000s") {
		t.Errorf("3s behind: %+v", c)
	}
}

func TestChecksOnFacts(t *testing.T) {
	f, err := parseFacts(readFacts(t))
	if err != nil {
		t.Fatal(err)
	}
	n := need{hasServices: true, diskBytes: 1 << 20, ports: []portNeed{
		{component: "zk", port: 2181, host: "127.0.2.1"},     // on :: (every address): fail
		{component: "ne", port: 9100, host: "127.0.2.1"},     // on another node's address: warn
		{component: "free", port: 7000, host: "127.0.2.1"},   // free
		{component: "mapped", port: 9092, host: "127.0.2.1"}, // v4-mapped v6 of this address: fail
	}}
	c := portsCheck(f, n)
	if c.Status != Fail {
		t.Errorf("ports: %+v", c)
	}
	for _, want := range []string{"2181 (zk) is in use on ::", "9092 (mapped) is in use on 127.0.2.1", "9100 (ne) is in use on 127.0.2.2", "free: 7000 (free)"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("ports message lacks %q: %s", want, c.Message)
		}
	}
	if c := portsCheck(f, need{ports: []portNeed{{component: "ne", port: 9100, host: "127.0.2.1"}}}); c.Status != Warn {
		t.Errorf("a port taken on another address only: %+v", c)
	}
	if c := systemdCheck(f, n); c.Status != Pass {
		t.Errorf("systemd: %+v", c)
	}
	f.PID1 = "sh"
	if c := systemdCheck(f, n); c.Status != Fail {
		t.Errorf("no systemd with services: %+v", c)
	}
	if c := systemdCheck(f, need{}); c.Status != Warn {
		t.Errorf("no systemd, files only: %+v", c)
	}
	if c := diskCheck(f, need{diskBytes: 100 << 30}); c.Status != Fail {
		t.Errorf("disk too small: %+v", c)
	}
}
