package e2edaemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drover-project/drover/test/daemonproc"
)

// rollout is how long a change of node_exporter on three nodes, one at a
// time, may take on a busy machine.
const rollout = 4 * time.Minute

// TestEditsRollOut: with the daemon running, the manifest edited by
// rewriting it in place, then as vim saves (rename the original away,
// write a new file), rolls node_exporter from one version to the other
// and back (1.8.2 <-> 1.9.1) out to every node, with no command run. The daemon's log is JSON, with one line
// per action naming the node, the component, the outcome and the duration.
func TestEditsRollOut(t *testing.T) {
	s := setup(t)
	from, to := s.pair()
	m := filepath.Join(t.TempDir(), "cluster.yaml")
	s.writeManifest(t, m, spec{version: from})
	d := s.startDaemon(t, m)
	s.waitConverged(t, d, from, rollout)
	gen := d.Status().Generation

	t.Run("rewrite", func(t *testing.T) {
		s.writeManifest(t, m, spec{version: to})
		s.waitConverged(t, d, to, rollout)
	})
	t.Run("vim", func(t *testing.T) {
		if err := os.Rename(m, m+"~"); err != nil {
			t.Fatal(err)
		}
		s.writeManifest(t, m, spec{version: from})
		if err := os.Remove(m + "~"); err != nil {
			t.Fatal(err)
		}
		s.waitConverged(t, d, from, rollout)
	})
	if st := d.Status(); st.Generation != gen+2 || !st.LoadSuccess {
		t.Errorf("after two edits: generation %d (from %d), load success %v", st.Generation, gen, st.LoadSuccess)
	}

	// SIGHUP re-reads the manifest: the same bytes, so nothing changes.
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	daemonproc.WaitFor(t, 30*time.Second, "the SIGHUP re-read logged", func() bool {
		return d.LogHas(map[string]string{"msg": "SIGHUP: re-reading the manifest"})
	})
	if st := d.Status(); st.Generation != gen+2 || !st.LoadSuccess || !d.Running() {
		t.Errorf("after SIGHUP: generation %d, load success %v, running %v", st.Generation, st.LoadSuccess, d.Running())
	}

	// Structured logs: every line JSON, one per action with its outcome.
	upgrades := 0
	for _, l := range d.LogLines() {
		if l["msg"] == "action succeeded" && l["action"] == "upgrade" {
			upgrades++
			for _, k := range []string{"node", "component", "from", "to", "duration", "ts", "level"} {
				if _, ok := l[k]; !ok {
					t.Errorf("action log line lacks %q: %v", k, l)
				}
			}
		}
	}
	// 3 upgrades there and 3 back ("upgrade" covers downgrades), and any
	// the start needed.
	if upgrades < 6 {
		t.Errorf("%d 'action succeeded' upgrade lines in the log, want 6 or more", upgrades)
	}
}

// configMap lays a directory out as Kubernetes mounts a ConfigMap:
// cluster.yaml -> ..data/cluster.yaml, ..data -> ..<timestamp>.
type configMap struct {
	t   *testing.T
	dir string
	n   int
}

func (cm *configMap) path() string { return filepath.Join(cm.dir, "cluster.yaml") }

// publish swaps in new content as kubelet's atomic writer does.
func (cm *configMap) publish(content string) {
	t := cm.t
	cm.n++
	ts := fmt.Sprintf("..2024_06_01_12_00_%02d.%d", cm.n, 100+cm.n)
	if err := os.Mkdir(filepath.Join(cm.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cm.dir, ts, "cluster.yaml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	old, _ := os.Readlink(filepath.Join(cm.dir, "..data"))
	if err := os.Symlink(ts, filepath.Join(cm.dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(cm.dir, "..data_tmp"), filepath.Join(cm.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if old != "" {
		os.RemoveAll(filepath.Join(cm.dir, old))
	} else if err := os.Symlink("..data/cluster.yaml", cm.path()); err != nil {
		t.Fatal(err)
	}
}

// TestConfigMapSwapRollsOut: the manifest mounted as a ConfigMap; a new
// version published by swapping the `..data` link rolls out.
func TestConfigMapSwapRollsOut(t *testing.T) {
	s := setup(t)
	from, to := s.pair()
	cm := &configMap{t: t, dir: t.TempDir()}
	cm.publish(s.manifest(spec{version: from}))
	d := s.startDaemon(t, cm.path())
	s.waitConverged(t, d, from, rollout)
	cm.publish(s.manifest(spec{version: to}))
	s.waitConverged(t, d, to, rollout)
}

// quietFor checks for d that no node changes: every node keeps version
// and the daemon records no action.
func (s *suite) quietFor(t *testing.T, d *daemonproc.Daemon, version string, wait time.Duration) {
	t.Helper()
	before := actionCount(d.Status())
	time.Sleep(wait)
	if after := actionCount(d.Status()); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("actions ran: %v -> %v", before, after)
	}
	for n, v := range s.versions() {
		if v != version {
			t.Errorf("%s now runs %s, want %s", n, v, version)
		}
	}
}

// TestRejectedManifestsChangeNothing: an invalid edit that would also
// upgrade, an emptied file and a deleted file each leave every node as it
// is, for several probe intervals, and show in /metrics and the status;
// the next valid edit is applied.
func TestRejectedManifestsChangeNothing(t *testing.T) {
	s := setup(t)
	from, to := s.pair()
	m := filepath.Join(t.TempDir(), "cluster.yaml")
	s.writeManifest(t, m, spec{version: from})
	d := s.startDaemon(t, m)
	s.waitConverged(t, d, from, rollout)
	gen := d.Status().Generation

	// A misspelt field and a bad value, in an edit that would also upgrade.
	invalid := strings.Replace(s.manifest(spec{version: to}), "  rollout:\n", "  rollout:\n    maxUnavailabel: 2\n", 1)
	invalid = strings.Replace(invalid, "probeInterval: 5s", "probeInterval: often", 1)
	if !strings.Contains(invalid, "maxUnavailabel") || !strings.Contains(invalid, "often") {
		t.Fatal("the invalid edit did not apply")
	}
	cases := []struct {
		name    string
		edit    func()
		wantErr []string
	}{
		{"invalid", func() {
			if err := os.WriteFile(m, []byte(invalid), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"maxUnavailabel"}},
		{"emptied", func() {
			if err := os.WriteFile(m, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"empty"}},
		{"deleted", func() {
			if err := os.Remove(m); err != nil {
				t.Fatal(err)
			}
		}, []string{"no such file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.edit()
			daemonproc.WaitFor(t, 30*time.Second, "the rejection in the status", func() bool {
				st := d.Status()
				return !st.LoadSuccess && strings.Contains(st.LoadError, c.wantErr[0])
			})
			if !hasMetric(d.Metrics(), "drover_manifest_load_success 0") {
				t.Error("drover_manifest_load_success is not 0")
			}
			s.quietFor(t, d, from, 12*time.Second) // more than two probe intervals
			st := d.Status()
			if st.Generation != gen || st.LoadSuccess {
				t.Errorf("status: generation %d (want %d), load success %v", st.Generation, gen, st.LoadSuccess)
			}
			for _, n := range st.Nodes {
				if !n.Converged {
					t.Errorf("%s not converged on the last good manifest: %s", n.Name, n.Reason)
				}
			}
		})
	}
	s.writeManifest(t, m, spec{version: to})
	s.waitConverged(t, d, to, rollout)
	if st := d.Status(); !st.LoadSuccess || st.LoadError != "" || st.Generation != gen+1 {
		t.Errorf("after a valid edit: success %v error %q generation %d", st.LoadSuccess, st.LoadError, st.Generation)
	}
	if !hasMetric(d.Metrics(), "drover_manifest_load_success 1") {
		t.Error("drover_manifest_load_success is not 1")
	}
}
