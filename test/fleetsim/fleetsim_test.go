package fleetsim

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
)

const (
	root  = "/opt/drover"
	units = "/etc/systemd/system"
	sha1  = "1111111111111111111111111111111111111111111111111111111111111111"
	sha2  = "2222222222222222222222222222222222222222222222222222222222222222"
	shaU  = "3333333333333333333333333333333333333333333333333333333333333333"
)

func execCheck(cmd ...string) *manifests.Health {
	return &manifests.Health{Exec: &manifests.ExecCheck{Command: cmd}}
}

// request is a probe request touching every kind of line: a service with
// files, health and leader checks, a files-only component, and (in the
// models) a component the manifest no longer wants.
func request() probes.Request {
	return probes.Request{InstallRoot: root, Components: []probes.Want{
		{Name: "web", Version: "1.0", Files: []string{root + "/packages/web/1.0/conf/app.conf", "/etc/web.conf"}, Service: true,
			Health: execCheck("/bin/true"), Leader: execCheck("/bin/leader", "it's")},
		{Name: "tools", Version: "2", Files: []string{root + "/packages/tools/2/t.cfg"}},
	}}
}

// models are node states the round trip must carry unchanged.
func models() map[string]*Model {
	empty := NewModel("empty")
	full := NewModel("full")
	full.Receipts["web"] = []byte(`{"component":"web","version":"1.0","configHash":"abc","generation":"g1","time":"2026-01-02T03:04:05Z","files":["/etc/web.conf"]}` + "\n")
	full.Receipts["tools"] = []byte(`{"component":"tools","version":"2","configHash":"x","generation":"g1","time":"2026-01-02T03:04:05Z"}` + "\n")
	full.Receipts["old"] = []byte(`{"component":"old","version":"0.9","configHash":"y","generation":"g0","time":"2026-01-02T03:04:05Z"}` + "\n")
	full.Active["web"], full.Active["tools"], full.Active["old"] = "1.0", "2", "0.9"
	full.Packages["web"] = map[string]bool{"1.0": true, "0.9": true, "1.1": false}
	full.Packages["tools"] = map[string]bool{"2": true}
	full.Packages["old"] = map[string]bool{"0.9": true}
	full.Files[root+"/packages/web/1.0/conf/app.conf"] = File{Mode: 0o640, SHA256: sha1}
	full.Files["/etc/web.conf"] = File{Mode: 0o4755, SHA256: sha2}
	full.Files[units+"/drover-web.service"] = File{Mode: 0o644, SHA256: shaU}
	full.Files[units+"/drover-old.service"] = File{Mode: 0o644, SHA256: sha1}
	full.Units["drover-web.service"] = Unit{Active: "active", Sub: "running", Enabled: true}
	full.Units["drover-old.service"] = Unit{Active: "failed", Sub: "failed"}
	full.HealthFail["tools"] = 3
	full.Leader["web"] = true
	down := full.Clone()
	down.Hostname, down.FreeBytes = "down", -1
	down.Units["drover-web.service"] = Unit{Active: "inactive", Sub: "dead"}
	down.HealthFail["web"] = 1
	down.Receipts["tools"] = []byte{} // there but empty
	return map[string]*Model{"empty": empty, "full": full, "down": down}
}

// fromObserved rebuilds the model a probe saw: the inverse of Answer for
// what a probe can see (unit files are 0644; units and health only where
// the script looks; an inactive, disabled unit is one systemd does not know).
func fromObserved(t *testing.T, obs probes.Observed, raw map[string][]byte) *Model {
	t.Helper()
	m := NewModel(obs.OS.Hostname)
	m.OSID, m.OSVersion, m.Arch, m.FreeBytes = obs.OS.ID, obs.OS.VersionID, obs.OS.Arch, obs.OS.FreeBytes
	for name, c := range obs.Components {
		switch {
		case c.Receipt != nil:
			m.Receipts[name] = raw[name] // checked against the parsed receipt below
			if c.Receipt.Component != name {
				t.Errorf("%s: receipt for %q", name, c.Receipt.Component)
			}
		case c.ReceiptError != "":
			m.Receipts[name] = []byte{}
		}
		if c.Active != "" {
			m.Active[name] = c.Active
		}
		if len(c.Packages) > 0 {
			m.Packages[name] = c.Packages
		}
		for _, f := range c.Files {
			m.Files[f.Path] = File{Mode: uint32(f.Mode), SHA256: f.SHA256}
		}
		unit := "drover-" + name + ".service"
		if c.Unit.Exists {
			m.Files[units+"/"+unit] = File{Mode: 0o644, SHA256: c.Unit.Hash}
		}
		if u := (Unit{Active: c.Unit.ActiveState, Sub: c.Unit.SubState, Enabled: c.Unit.Enabled}); u.Active != "" && u != (Unit{Active: "inactive", Sub: "dead"}) {
			m.Units[unit] = u
		}
		if c.Health.Checked && !c.Health.OK {
			code, err := strconv.Atoi(strings.TrimPrefix(c.Health.Message, "exit "))
			if err != nil {
				t.Fatalf("%s: health message %q", name, c.Health.Message)
			}
			m.HealthFail[name] = code
		}
		if c.Leader.Checked && c.Leader.OK {
			m.Leader[name] = true
		}
	}
	return m
}

// visible is what of m a probe of req can see: health and leader only
// where the script runs them, no unit that is inactive and disabled.
func visible(m *Model, req ProbeRequest) *Model {
	v := m.Clone()
	for name, u := range v.Units {
		if u == (Unit{Active: "inactive", Sub: "dead"}) {
			delete(v.Units, name) // what systemctl shows of a unit it does not know
		}
	}
	for _, w := range req.Components {
		_, rcpt := m.Receipts[w.Name]
		runs := rcpt
		if w.Service {
			runs = m.unitFor("drover-"+w.Name+".service").Active == "active"
		}
		if !runs || !w.Health {
			delete(v.HealthFail, w.Name)
		}
		if !runs || !w.Leader {
			delete(v.Leader, w.Name)
		}
	}
	return v
}

// TestRoundTrip: model -> the script drover builds -> the simulator's
// answer -> probes.Parse -> the same model.
func TestRoundTrip(t *testing.T) {
	script, err := probes.Script(request())
	if err != nil {
		t.Fatal(err)
	}
	req, err := ParseProbe(script)
	if err != nil {
		t.Fatal(err)
	}
	wantReq := ProbeRequest{Root: root, Units: units, Components: []ProbeWant{
		{Name: "web", Files: []string{root + "/packages/web/1.0/conf/app.conf", "/etc/web.conf"}, Service: true, Health: true, Leader: true},
		{Name: "tools", Files: []string{root + "/packages/tools/2/t.cfg"}},
	}}
	if !reflect.DeepEqual(req, wantReq) {
		t.Fatalf("ParseProbe:\n got %+v\nwant %+v", req, wantReq)
	}
	req.Components[1].Health = true // a files-only exec check, parsed the same way
	for name, m := range models() {
		t.Run(name, func(t *testing.T) {
			out := m.Answer(req)
			obs, err := probes.Parse(out)
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, out)
			}
			got := fromObserved(t, obs, m.Receipts)
			want := visible(m, req)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip changed the model:\n got %+v\nwant %+v\nanswer:\n%s", got, want, out)
			}
			for c, raw := range m.Receipts {
				if len(raw) > 0 && obs.Components[c].Receipt == nil {
					t.Errorf("%s: receipt lost: %s", c, obs.Components[c].ReceiptError)
				}
			}
		})
	}
}

// newClientKey writes an ed25519 private key for the pool to offer.
func newClientKey(t *testing.T) (string, ssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return p, sp
}

// TestProbeOverSSH: drover's own pool and probe, unmodified, against
// simulated nodes: strict host keys from the generated known_hosts, the
// resident shell's first, second and later requests, and the same
// observation a direct Answer gives.
func TestProbeOverSSH(t *testing.T) {
	key, pub := newClientKey(t)
	addrs := []string{Address(60000), Address(60001)} // 127.1.236.x: clear of the bench's first nodes
	fleet, err := Start(Options{Addresses: addrs, AuthorizedKey: pub})
	if err != nil {
		t.Skipf("cannot listen on port 22 of %v (needs root or CAP_NET_BIND_SERVICE): %v", addrs, err)
	}
	defer fleet.Close()
	known := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(known, fleet.KnownHosts(), 0o644); err != nil {
		t.Fatal(err)
	}
	pool, err := inventory.NewPool(inventory.Config{User: "root", Port: 22, IdentityFiles: []string{key}, KnownHostsFile: known, ConnectTimeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	full := models()["full"]
	fleet.Nodes[1].Do(func(m *Model) { *m = *full.Clone() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := request()
	script, _ := probes.Script(req)
	preq, _ := ParseProbe(script)
	for i, n := range fleet.Nodes {
		target := inventory.Target{Name: n.Name, Address: n.Address, Port: 22, User: "root"}
		want, err := probes.Parse(n.Snapshot().Answer(preq))
		if err != nil {
			t.Fatal(err)
		}
		for round := range 3 { // the resident shell's first, second (setup) and third request
			obs := probes.Probe(ctx, pool, target, req)
			if !obs.Known {
				t.Fatalf("node %d round %d: %s: %s", i, round, obs.Reason, obs.Error)
			}
			obs.Node, obs.ProbedAt, obs.Duration = "", time.Time{}, 0
			for _, w := range req.Components {
				// Probe fills what Parse leaves for it; compare the rest.
				obs.Components[w.Name].Health, obs.Components[w.Name].Leader = want.Components[w.Name].Health, want.Components[w.Name].Leader
			}
			if !reflect.DeepEqual(obs, want) {
				t.Fatalf("node %d round %d:\n got %+v\nwant %+v", i, round, obs, want)
			}
		}
		if probes, _ := n.Counts(); probes != 3 {
			t.Errorf("node %d answered %d probes, want 3", i, probes)
		}
	}
	if s := fleet.Stats(); s.Accepted != 2 {
		t.Errorf("accepted %d connections, want 2 (one per node, reused)", s.Accepted)
	}
}
