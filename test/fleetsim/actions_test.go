package fleetsim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler/execute"
	"github.com/drover-project/drover/reconciler/plan"
)

// manifestFor is a one-node cluster: app (service, file, exec health) at
// version and conf, and tools (files only) unless dropTools.
func manifestFor(dir, key, known, addr, version, conf string, dropTools bool) (string, error) {
	art := filepath.Join(dir, "app-"+version+".tar.gz")
	content := []byte("artifact " + version)
	if err := os.WriteFile(art, content, 0o644); err != nil {
		return "", err
	}
	sum := sha256.Sum256(content)
	y := fmt.Sprintf(`apiVersion: drover/v1
kind: Cluster
metadata: {name: sim}
spec:
  installRoot: /opt/drover
  ssh: {user: root, port: 22, identityFiles: [%q], knownHostsFile: %q, connectTimeout: 5s}
  nodes:
    - {name: n1, address: %s}
  components:
    - name: app
      version: %q
      artifact: {path: %q, sha256: %s}
      files:
        - {path: conf/app.conf, template: "conf=%s\n"}
        - {path: /etc/app.conf, mode: "0600", template: "x\n"}
      service: {exec: "{{ .Dir }}/bin/app"}
      health: {exec: {command: [/bin/true]}, timeout: 5s}
`, key, known, addr, version, art, hex.EncodeToString(sum[:]), conf)
	if !dropTools {
		y += "    - {name: tools, version: \"2\", files: [{path: t.cfg, template: \"t\\n\"}]}\n"
	}
	p := filepath.Join(dir, "cluster.yaml")
	return p, os.WriteFile(p, []byte(y), 0o644)
}

// TestActionsConverge: drover's own executor, unmodified, installs,
// reconfigures, upgrades and removes on a simulated node through the
// pool, and the simulated node's probe then shows it converged: each
// step drover runs is simulated, and what it leaves is what drover's
// diff wants.
func TestActionsConverge(t *testing.T) {
	key, pub := newClientKey(t)
	addr := Address(60002)
	fleet, err := Start(Options{Addresses: []string{addr}, AuthorizedKey: pub})
	if err != nil {
		t.Skipf("cannot listen on port 22 of %s (needs root or CAP_NET_BIND_SERVICE): %v", addr, err)
	}
	defer fleet.Close()
	dir := t.TempDir()
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, fleet.KnownHosts(), 0o644); err != nil {
		t.Fatal(err)
	}
	pool, err := inventory.NewPool(inventory.Config{User: "root", Port: 22, IdentityFiles: []string{key}, KnownHostsFile: known, ConnectTimeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	steps := []struct {
		name, version, conf string
		dropTools           bool
		want                []plan.ActionKind // the first round's actions
	}{
		{"install", "1.0", "a", false, []plan.ActionKind{plan.ActionInstall, plan.ActionInstall}},
		{"reconfigure", "1.0", "b", false, []plan.ActionKind{plan.ActionReconfigure}},
		{"upgrade", "1.1", "b", false, []plan.ActionKind{plan.ActionUpgrade}},
		{"remove", "1.1", "b", true, []plan.ActionKind{plan.ActionRemove}},
	}
	for _, s := range steps {
		p, err := manifestFor(dir, key, known, addr, s.version, s.conf, s.dropTools)
		if err != nil {
			t.Fatal(err)
		}
		l, err := manifests.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		d, err := plan.Compile(l)
		if err != nil {
			t.Fatal(err)
		}
		node := d.Nodes[0]
		ex := execute.New(execute.Config{Runner: pool, InstallRoot: d.InstallRoot, Generation: d.Generation, HealthPoll: 10 * time.Millisecond})
		for round := 0; ; round++ {
			obs := probes.Probe(ctx, pool, node.Target, plan.RequestFor(d, node))
			if !obs.Known {
				t.Fatalf("%s: probe: %s: %s", s.name, obs.Reason, obs.Error)
			}
			pl := plan.Diff(d, map[string]probes.Observed{node.Name: obs})
			acts := pl.Nodes[0].Actions
			if round == 0 {
				var kinds []plan.ActionKind
				for _, a := range acts {
					kinds = append(kinds, a.Kind)
				}
				if fmt.Sprint(kinds) != fmt.Sprint(s.want) {
					t.Fatalf("%s: first plan %v, want %v", s.name, kinds, s.want)
				}
			}
			if len(acts) == 0 {
				break
			}
			if round == 1 {
				t.Fatalf("%s: still not converged after one round of actions: %+v", s.name, acts)
			}
			for _, a := range acts {
				if err := ex.Do(ctx, node, a, node.Component(a.Component), obs.Components[a.Component]); err != nil {
					t.Fatalf("%s: %s %s: %v", s.name, a.Kind, a.Component, err)
				}
			}
		}
	}
	m := fleet.Nodes[0].Snapshot()
	if _, ok := m.Receipts["tools"]; ok {
		t.Error("tools' receipt is still there after its removal")
	}
	if m.Active["app"] != "1.1" || m.Units["drover-app.service"].Active != "active" {
		t.Errorf("app: active %q, unit %+v", m.Active["app"], m.Units["drover-app.service"])
	}
}
