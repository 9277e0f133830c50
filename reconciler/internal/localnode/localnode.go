package localnode

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler/internal/chain"
	"github.com/drover-project/drover/reconciler/plan"
)

// LocalNode is a node made of a temp dir: the action scripts run on this
// machine with /bin/sh against a temp install root and unit dir, and a
// fake systemctl (first in PATH) records every call and keeps unit state
// in files. Tests of package reconciler use it to run the real on-node
// scripts without SSH or systemd.
type LocalNode struct {
	Dir     string // everything lives under here
	Root    string // the install root
	UnitDir string // where unit files go
	Outside string // a dir outside the install root for absolute-path files
	// State is the fake systemd's state dir; CallLog its call record.
	State   string
	CallLog string
	Runner  *LocalRunner
	Target  inventory.Target
}

// fakeSystemctl emulates what the action scripts use of systemctl:
// daemon-reload loads unit files (remembering their sha256, which
// NeedDaemonReload compares against), enable/disable/is-enabled, restart
// (the unit fails when its ExecStart binary is not executable, like a
// Type=simple unit whose process dies at once), stop, reset-failed and
// show [-p ActiveState|NeedDaemonReload|LoadState]... [--value]. A unit
// is known to it only after a daemon-reload, as with real systemd.
const fakeSystemctl = `#!/bin/sh
echo "$*" >> "$FAKE_SYSTEMCTL_LOG"
st=$FAKE_SYSTEMCTL_STATE
mkdir -p "$st/loaded" "$st/enabled" "$st/active"
cmd= props= unit= value=
while [ $# -gt 0 ]; do
	case "$1" in
	--quiet | --no-pager) ;;
	--value) value=1 ;;
	-p) shift; props="$props $1" ;;
	-*) echo "fake systemctl: unknown option $1" >&2; exit 2 ;;
	*) if [ -z "$cmd" ]; then cmd=$1; else unit=$1; fi ;;
	esac
	shift
done
uf="$FAKE_UNIT_DIR/$unit"
sum() { sha256sum < "$1" | cut -c1-64; }
case "$cmd" in
daemon-reload)
	for l in "$st"/loaded/*; do [ -e "$l" ] || continue; [ -f "$FAKE_UNIT_DIR/${l##*/}" ] || rm -f "$l"; done
	for f in "$FAKE_UNIT_DIR"/*.service; do [ -f "$f" ] && sum "$f" > "$st/loaded/${f##*/}"; done
	exit 0 ;;
show)
	for p in $props; do
		case "$p" in
		ActiveState) if [ -f "$st/active/$unit" ]; then v=$(cat "$st/active/$unit"); else v=inactive; fi ;;
		LoadState) if [ -f "$st/loaded/$unit" ]; then v=loaded; else v=not-found; fi ;;
		NeedDaemonReload)
			if [ -f "$st/loaded/$unit" ] && { [ ! -f "$uf" ] || [ "$(sum "$uf")" != "$(cat "$st/loaded/$unit")" ]; }; then v=yes; else v=no; fi ;;
		*) echo "fake systemctl: unknown property $p" >&2; exit 2 ;;
		esac
		if [ -n "$value" ]; then echo "$v"; else echo "$p=$v"; fi
	done
	exit 0 ;;
is-enabled)
	if [ -f "$st/enabled/$unit" ]; then echo enabled; exit 0; fi
	if [ -f "$st/loaded/$unit" ]; then echo disabled; else echo "Failed to get unit file state for $unit: No such file or directory" >&2; fi
	exit 1 ;;
enable)
	[ -f "$uf" ] || { echo "Failed to enable unit: Unit file $unit does not exist." >&2; exit 1; }
	: > "$st/enabled/$unit"; echo "Created symlink for $unit" >&2; exit 0 ;;
disable) rm -f "$st/enabled/$unit"; exit 0 ;;
restart)
	[ -f "$st/loaded/$unit" ] || { echo "Failed to restart $unit: Unit $unit not found." >&2; exit 5; }
	exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$uf")
	if [ -x "$exe" ]; then echo active > "$st/active/$unit"; else echo failed > "$st/active/$unit"; fi
	exit 0 ;;
stop) [ -f "$st/active/$unit" ] && echo inactive > "$st/active/$unit"; exit 0 ;;
reload) [ "$(cat "$st/active/$unit" 2>/dev/null)" = active ] || { echo "Job for $unit failed: not active" >&2; exit 1; }; exit 0 ;;
reset-failed) [ "$(cat "$st/active/$unit" 2>/dev/null)" = failed ] && echo inactive > "$st/active/$unit"; exit 0 ;;
*) echo "fake systemctl: unknown command $cmd" >&2; exit 2 ;;
esac
`

// NewLocalNode makes a LocalNode in a fresh temp dir.
func NewLocalNode(t *testing.T) *LocalNode {
	t.Helper()
	dir := t.TempDir()
	n := &LocalNode{
		Dir:     dir,
		Root:    filepath.Join(dir, "opt", "drover"),
		UnitDir: filepath.Join(dir, "etc", "systemd", "system"),
		Outside: filepath.Join(dir, "etc", "app"),
		State:   filepath.Join(dir, "systemd-state"),
		CallLog: filepath.Join(dir, "systemctl.log"),
		Target:  inventory.Target{Name: "local", Address: "127.0.0.1"},
	}
	bin := filepath.Join(dir, "bin")
	for _, d := range []string{bin, n.UnitDir, n.State, filepath.Join(dir, "cwd")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(fakeSystemctl), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.CallLog, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	n.Runner = &LocalRunner{
		Dir: filepath.Join(dir, "cwd"),
		Env: append(os.Environ(),
			"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
			"FAKE_SYSTEMCTL_STATE="+n.State,
			"FAKE_SYSTEMCTL_LOG="+n.CallLog,
			"FAKE_UNIT_DIR="+n.UnitDir,
			"no_proxy=*", "NO_PROXY=*",
		),
	}
	return n
}

// DesiredNode is the node as the executor takes it.
func (n *LocalNode) DesiredNode() *plan.DesiredNode {
	return &plan.DesiredNode{Name: n.Target.Name, Target: n.Target}
}

// SystemctlCalls returns every systemctl call so far, one string each.
func (n *LocalNode) SystemctlCalls(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(n.CallLog)
	if err != nil {
		t.Fatal(err)
	}
	var calls []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" {
			calls = append(calls, l)
		}
	}
	return calls
}

// ResetCalls forgets the systemctl calls and the scripts run so far.
func (n *LocalNode) ResetCalls(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(n.CallLog, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	n.Runner.Reset()
}

// UnitActiveState is what the fake systemd says of a unit.
func (n *LocalNode) UnitActiveState(unit string) string {
	b, err := os.ReadFile(filepath.Join(n.State, "active", unit))
	if err != nil {
		return "inactive"
	}
	return strings.TrimSpace(string(b))
}

// Probe is a ProbeFunc for the node, read straight from its files: for
// each wanted component and each receipt, the receipt, active version,
// package dirs, unit state, and health (when wanted with a check): it
// fails while the active version dir holds a file named "unhealthy".
func (n *LocalNode) Probe(ctx context.Context, _ inventory.Runner, _ inventory.Target, req probes.Request) probes.Observed {
	obs := probes.Observed{Node: n.Target.Name, Known: true, ProbedAt: time.Now(), Components: map[string]*probes.Component{}}
	if err := ctx.Err(); err != nil {
		return probes.Observed{Node: n.Target.Name, Reason: "timeout", Error: err.Error()}
	}
	names := map[string]*probes.Want{}
	for i := range req.Components {
		names[req.Components[i].Name] = &req.Components[i]
	}
	receipts, _ := filepath.Glob(filepath.Join(n.Root, "receipts", "*.json"))
	for _, r := range receipts {
		name := strings.TrimSuffix(filepath.Base(r), ".json")
		if names[name] == nil {
			names[name] = nil
		}
	}
	for name, w := range names {
		c := n.Component(name)
		if w != nil && w.Health != nil {
			c.Health.Checked = true
			_, err := os.Stat(filepath.Join(n.Root, "active", name, "unhealthy"))
			c.Health.OK = errors.Is(err, os.ErrNotExist)
			if !c.Health.OK {
				c.Health.Message = "connection refused"
			}
		}
		obs.Components[name] = c
	}
	return obs
}

// Observe is what a probe would report of one component now.
func (n *LocalNode) Observe(t *testing.T, name string) *probes.Component {
	t.Helper()
	return n.Component(name)
}

// Component is what a probe would report of one component now.
func (n *LocalNode) Component(name string) *probes.Component {
	c := &probes.Component{Name: name, Packages: map[string]bool{}}
	if b, err := os.ReadFile(filepath.Join(n.Root, "receipts", name+".json")); err == nil {
		var r probes.Receipt
		if err := json.Unmarshal(b, &r); err == nil {
			c.Receipt = &r
		} else {
			c.ReceiptError = err.Error()
		}
	}
	if l, err := os.Readlink(filepath.Join(n.Root, "active", name)); err == nil {
		c.Active = filepath.Base(l)
	}
	entries, _ := os.ReadDir(filepath.Join(n.Root, "packages", name))
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			_, err := os.Stat(filepath.Join(n.Root, "packages", name, e.Name(), ".complete"))
			c.Packages[e.Name()] = err == nil
		}
	}
	unit := plan.UnitName(name)
	if b, err := os.ReadFile(filepath.Join(n.UnitDir, unit)); err == nil {
		c.Unit.Exists = true
		c.Unit.Hash = manifests.SHA256Hex(b)
	}
	c.Unit.ActiveState = n.UnitActiveState(unit)
	_, err := os.Stat(filepath.Join(n.State, "enabled", unit))
	c.Unit.Enabled = err == nil
	return c
}

// LocalRunner is an inventory.Runner that runs scripts on this machine
// with /bin/sh, in Dir with Env, and remembers which steps ran (by the
// label the gate puts on each script's first line).
type LocalRunner struct {
	Dir string
	Env []string
	// Hook, if set, sees each script and its stdin before it runs and may
	// change the script, or fail the run (as a transport error) after
	// running it.
	Hook func(label, script string, stdin []byte) (string, error)

	mu     sync.Mutex
	labels []string
}

var _ inventory.Runner = (*LocalRunner)(nil)

// Run runs script with sh, feeding stdin. A batch of steps
// (stepchain.go) runs as sent, or, when there is a Hook, step by step so
// that the Hook sees each step's script and stdin as if it ran alone.
func (r *LocalRunner) Run(ctx context.Context, _ inventory.Target, script string, stdin io.Reader) (inventory.Result, error) {
	if strings.HasPrefix(script, "# drover steps: ") {
		return r.runBatch(ctx, script, stdin)
	}
	label, _, _ := strings.Cut(script, "\n")
	label = strings.TrimPrefix(label, "# drover ")
	var hookErr error
	if r.Hook != nil {
		var in []byte
		if stdin != nil {
			var err error
			if in, err = io.ReadAll(stdin); err != nil {
				return inventory.Result{}, err
			}
			stdin = bytes.NewReader(in)
		}
		script, hookErr = r.Hook(label, script, in)
	}
	r.addLabels(label)
	res, err := r.exec(ctx, script, stdin)
	if err == nil && hookErr != nil {
		return res, hookErr
	}
	return res, err
}

func (r *LocalRunner) addLabels(labels ...string) {
	r.mu.Lock()
	r.labels = append(r.labels, labels...)
	r.mu.Unlock()
}

// exec runs script with /bin/sh in the node's dir and environment.
func (r *LocalRunner) exec(ctx context.Context, script string, stdin io.Reader) (inventory.Result, error) {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script)
	cmd.Dir, cmd.Env, cmd.Stdin = r.Dir, r.Env, stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := inventory.Result{Stdout: out.Bytes(), Stderr: errb.Bytes()}
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		res.ExitCode = ee.ExitCode()
		err = nil
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		return res, fmt.Errorf("local run: %w", err)
	}
	return res, nil
}

// batchStep is one step of a batch script, as it would run alone.
type batchStep struct {
	name, script string
	size         int
}

// parseBatch takes a batch script (chainScript) apart.
func parseBatch(script string) (marker string, steps []batchStep, err error) {
	_, rest, _ := strings.Cut(script, "\ndc_m=")
	marker, _, _ = strings.Cut(rest, "\n")
	for {
		head := "\n# " + marker + " step "
		i := strings.Index(rest, head)
		if i < 0 {
			break
		}
		rest = rest[i+len(head):]
		var st batchStep
		line, body, _ := strings.Cut(rest, "\n")
		if st.size, err = strconv.Atoi(line); err != nil {
			return "", nil, fmt.Errorf("batch step size %q: %w", line, err)
		}
		_, body, _ = strings.Cut(body, "\n") // the subshell's opening line
		end := strings.Index(body, "\n# "+marker+" done\n")
		if end < 0 {
			return "", nil, errors.New("batch step without its end")
		}
		st.script = body[:end] + "\n"
		label, _, _ := strings.Cut(st.script, "\n")
		st.name = strings.TrimPrefix(label, "# drover step: ")
		steps = append(steps, st)
		rest = body[end:]
	}
	if len(steps) == 0 {
		return "", nil, errors.New("batch script without steps")
	}
	return marker, steps, nil
}

// runBatch runs a batch script: as it is without a Hook (labelling the
// steps that reported), else step by step, each seen by the Hook, with
// the output the batch script would have given.
func (r *LocalRunner) runBatch(ctx context.Context, script string, stdin io.Reader) (inventory.Result, error) {
	marker, steps, err := parseBatch(script)
	if err != nil {
		return inventory.Result{}, err
	}
	if r.Hook == nil {
		res, err := r.exec(ctx, script, stdin)
		reports, _ := chain.Split(res, marker)
		ran := len(reports)
		failed := ran > 0 && reports[ran-1].Res.ExitCode != 0
		if ran < len(steps) && !failed && (err != nil || res.ExitCode != 0) {
			ran++ // the batch ended under this step, before its report
		}
		for _, st := range steps[:min(ran, len(steps))] {
			r.addLabels("step: " + st.name)
		}
		return res, err
	}
	var all []byte
	if stdin != nil {
		if all, err = io.ReadAll(stdin); err != nil {
			return inventory.Result{}, err
		}
	}
	var out, errb bytes.Buffer
	for i, st := range steps {
		in := all[:min(st.size, len(all))]
		all = all[len(in):]
		s, hookErr := r.Hook("step: "+st.name, st.script, in)
		r.addLabels("step: " + st.name)
		res, err := r.exec(ctx, s, bytes.NewReader(in))
		out.Write(res.Stdout)
		errb.Write(res.Stderr)
		whole := inventory.Result{Stdout: out.Bytes(), Stderr: errb.Bytes(), ExitCode: res.ExitCode}
		if err != nil {
			return whole, err
		}
		if hookErr != nil {
			return whole, hookErr
		}
		fmt.Fprintf(&out, "\n%s %d 0 0\n", marker, res.ExitCode)
		fmt.Fprintf(&errb, "\n%s %d\n", marker, i)
		if res.ExitCode != 0 {
			return inventory.Result{Stdout: out.Bytes(), Stderr: errb.Bytes(), ExitCode: res.ExitCode}, nil
		}
	}
	return inventory.Result{Stdout: out.Bytes(), Stderr: errb.Bytes()}, nil
}

// DialTCP connects to a loopback address only.
func (r *LocalRunner) DialTCP(ctx context.Context, _ inventory.Target, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("local runner dials loopback only, not %s", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// Labels are the scripts run so far: "step <name>" or "query <name>".
func (r *LocalRunner) Labels() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.labels)
}

// Steps are the names of the steps run so far, queries left out.
func (r *LocalRunner) Steps() []string {
	var out []string
	for _, l := range r.Labels() {
		if name, ok := strings.CutPrefix(l, "step: "); ok {
			out = append(out, name)
		}
	}
	return out
}

// Reset forgets the scripts run so far.
func (r *LocalRunner) Reset() {
	r.mu.Lock()
	r.labels = nil
	r.mu.Unlock()
}

// TarEntry is one file of a test artifact, or a symlink to Link, or a
// hard link to HardLink.
type TarEntry struct {
	Name     string
	Mode     int64
	Content  string
	Link     string
	HardLink string
}

// WriteTarGz writes a tar.gz artifact and returns its sha256.
func WriteTarGz(t *testing.T, path string, entries ...TarEntry) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.Name, Mode: e.Mode, Size: int64(len(e.Content)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0), Uid: 4242, Gid: 4242}
		switch {
		case e.Link != "":
			hdr.Typeflag, hdr.Linkname, hdr.Size, hdr.Mode = tar.TypeSymlink, e.Link, 0, 0o777
		case e.HardLink != "":
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, e.HardLink, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.Content)); hdr.Typeflag == tar.TypeReg && err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:])
}
