package probes

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/manifests"
)

// testNode is a temp dir laid out like a node: an install root, a unit
// dir, and a bin dir with a fake systemctl that answers from state files.
type testNode struct {
	t     *testing.T
	root  string
	units string
	bin   string
	calls string // the fake tools append their names here
}

func newTestNode(t *testing.T, r *localRunner) *testNode {
	t.Helper()
	n := &testNode{
		t:     t,
		root:  filepath.Join(r.dir, "opt", "drover"),
		units: filepath.Join(r.dir, "units"),
		bin:   filepath.Join(r.dir, "bin"),
		calls: filepath.Join(t.TempDir(), "calls"), // outside the node: probes must not change it
	}
	for _, d := range []string{n.root, n.units, n.bin, filepath.Join(r.dir, "systemd")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The fake systemctl prints properties in systemd's own order (Id is
	// not first) and a blank line between units, as systemctl show does.
	n.write(filepath.Join(n.bin, "systemctl"), `#!/bin/sh
echo systemctl >>"$DP_CALLS"
[ "$1" = show ] || exit 1
shift
sep=
for a; do
	case $a in -p|Id|ActiveState|SubState|UnitFileState) continue ;; esac
	printf '%s' "$sep"; sep='
'
	st="inactive dead disabled"
	[ -f "$DP_SYSTEMD/$a" ] && st=$(cat "$DP_SYSTEMD/$a")
	set -- $st
	printf 'ActiveState=%s\nSubState=%s\nId=%s\nUnitFileState=%s\n' "$1" "$2" "$a" "$3"
done
`, 0o755)
	// Count the forks of the tools that must run once per probe.
	for _, tool := range []string{"sha256sum", "stat", "base64", "df", "uname", "readlink", "timeout"} {
		real, err := lookPathOutside(tool, n.bin)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		n.write(filepath.Join(n.bin, tool), "#!/bin/sh\necho "+tool+" >>\"$DP_CALLS\"\nexec "+real+" \"$@\"\n", 0o755)
	}
	r.env = append(r.env, "PATH="+n.bin+":"+os.Getenv("PATH"), "DP_CALLS="+n.calls, "DP_SYSTEMD="+filepath.Join(r.dir, "systemd"))
	return n
}

func lookPathOutside(tool, not string) (string, error) {
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(d, tool)
		if d == not {
			continue
		}
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", os.ErrNotExist
}

func (n *testNode) write(p, content string, mode os.FileMode) {
	n.t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		n.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		n.t.Fatal(err)
	}
}

func (n *testNode) request(ws ...Want) Request {
	return Request{InstallRoot: n.root, UnitDir: n.units, Components: ws}
}

func (n *testNode) receipt(name, version string) Receipt {
	n.t.Helper()
	r := Receipt{Component: name, Version: version, ArtifactSHA256: strings.Repeat("ab", 32), ConfigHash: "c0ffee", Generation: "g1", Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	b, err := json.Marshal(r)
	if err != nil {
		n.t.Fatal(err)
	}
	n.write(filepath.Join(n.root, "receipts", name+".json"), string(b)+"\n", 0o644)
	return r
}

// pkg unpacks an (empty) version dir, complete or not.
func (n *testNode) pkg(name, version string, complete bool) string {
	n.t.Helper()
	dir := filepath.Join(n.root, "packages", name, version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		n.t.Fatal(err)
	}
	if complete {
		n.write(filepath.Join(dir, ".complete"), "", 0o644)
	}
	return dir
}

func (n *testNode) activate(name, version string) {
	n.t.Helper()
	link := filepath.Join(n.root, "active", name)
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		n.t.Fatal(err)
	}
	os.Remove(link)
	if err := os.Symlink(filepath.Join("..", "packages", name, version), link); err != nil {
		n.t.Fatal(err)
	}
}

func (n *testNode) unit(name, content, state string) {
	n.t.Helper()
	if content != "" {
		n.write(filepath.Join(n.units, "drover-"+name+".service"), content, 0o644)
	}
	if state != "" {
		n.write(filepath.Join(filepath.Dir(n.units), "systemd", "drover-"+name+".service"), state, 0o644)
	}
}

// toolCalls counts how often each counted tool ran.
func (n *testNode) toolCalls() map[string]int {
	b, err := os.ReadFile(n.calls)
	if err != nil && !os.IsNotExist(err) {
		n.t.Fatal(err)
	}
	out := map[string]int{}
	for _, l := range strings.Fields(string(b)) {
		out[l]++
	}
	os.Remove(n.calls)
	return out
}

func sha256Hex(s string) string {
	return manifests.RenderedFile{Content: []byte(s)}.Digest()
}
