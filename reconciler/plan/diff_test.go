package plan

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
)

// diffManifest: zk (quorum, files, unit, tcp check) on masters, app on
// agents after zk, conf (files only, exec check) everywhere, gone absent.
const diffManifest = `apiVersion: drover/v1
kind: Cluster
metadata: {name: t}
spec:
  nodes:
    - {name: m1, address: 127.0.2.1, roles: [master]}
    - {name: a1, address: 127.0.2.11, roles: [agent]}
  components:
    - name: zk
      version: "3.8.4"
      roles: [master]
      quorum: true
      artifact: {url: "https://example.com/zk.tgz", sha256: "1111111111111111111111111111111111111111111111111111111111111111"}
      files:
        - {path: conf/zoo.cfg, template: "server.1={{ .Node.Address }}\n"}
        - {path: data/myid, template: "1"}
      service: {exec: "{{ .Dir }}/bin/zk"}
      health: {tcp: {port: 2181}}
    - name: app
      version: "2"
      roles: [agent]
      dependsOn: [zk]
      service: {exec: "{{ .Dir }}/app"}
      health: {http: {port: 80}}
    - name: conf
      version: "1"
      files: [{path: /etc/conf.d/x.conf, template: "x"}]
      health: {exec: {command: [/bin/true]}}
    - name: gone
      version: "1"
      state: absent
`

// diffObserved is every node of d holding exactly what it should, healthy.
func diffObserved(d *Desired) map[string]probes.Observed {
	obs := map[string]probes.Observed{}
	for _, n := range d.Nodes {
		o := probes.Observed{Node: n.Name, Known: true, Components: map[string]*probes.Component{}}
		for _, c := range n.Components {
			o.Components[c.Name] = observedSynced(c)
		}
		obs[n.Name] = o
	}
	return obs
}

// oldVersion is a component at another version, running and healthy.
func oldVersion(name, version string) *probes.Component {
	return &probes.Component{
		Name:     name,
		Receipt:  &probes.Receipt{Component: name, Version: version, ConfigHash: "old", UnitHash: "old"},
		Active:   version,
		Packages: map[string]bool{version: true},
		Unit:     probes.UnitState{Exists: true, Hash: "old", ActiveState: "active", SubState: "running", Enabled: true},
	}
}

func TestDiff(t *testing.T) {
	d, err := compileYAML(t, "/srv/c.yaml", diffManifest)
	if err != nil {
		t.Fatal(err)
	}
	type change func(obs map[string]probes.Observed)
	on := func(node, comp string, f func(*probes.Component)) change {
		return func(obs map[string]probes.Observed) { f(obs[node].Components[comp]) }
	}
	cases := []struct {
		name   string
		change change
		node   string
		want   []Action // Node is filled in from node
	}{
		{"converged", nil, "m1", nil},
		{"fresh node", func(obs map[string]probes.Observed) {
			obs["m1"] = probes.Observed{Node: "m1", Known: true}
		}, "m1", []Action{
			{Component: "zk", Kind: ActionInstall, To: "3.8.4", Reason: "not installed"},
			{Component: "conf", Kind: ActionInstall, To: "1", Reason: "not installed"},
		}},
		{"version changed", func(obs map[string]probes.Observed) {
			obs["m1"].Components["zk"] = oldVersion("zk", "3.8.0")
		}, "m1", []Action{{Component: "zk", Kind: ActionUpgrade, From: "3.8.0", To: "3.8.4", Reason: "version changed in manifest", Disruptive: true}}},
		{"upgrade of a stopped unit is not disruptive", func(obs map[string]probes.Observed) {
			oc := oldVersion("zk", "3.8.0")
			oc.Unit.ActiveState = "failed"
			obs["m1"].Components["zk"] = oc
		}, "m1", []Action{{Component: "zk", Kind: ActionUpgrade, From: "3.8.0", To: "3.8.4", Reason: "version changed in manifest"}}},
		{"receipt missing, desired version active", on("m1", "zk", func(c *probes.Component) { c.Receipt = nil }),
			"m1", []Action{{Component: "zk", Kind: ActionInstall, To: "3.8.4", Reason: "receipt missing (interrupted install?)", Disruptive: true}}},
		{"receipt missing, other version active", on("m1", "zk", func(c *probes.Component) { c.Receipt, c.Active = nil, "3.8.0" }),
			"m1", []Action{{Component: "zk", Kind: ActionUpgrade, From: "3.8.0", To: "3.8.4", Reason: "receipt missing, 3.8.0 active", Disruptive: true}}},
		{"active link missing", on("m1", "zk", func(c *probes.Component) { c.Active = "" }),
			"m1", []Action{{Component: "zk", Kind: ActionInstall, From: "3.8.4", To: "3.8.4", Reason: "active link missing", Disruptive: true}}},
		{"active link points elsewhere", on("m1", "zk", func(c *probes.Component) { c.Active = "3.8.0" }),
			"m1", []Action{{Component: "zk", Kind: ActionUpgrade, From: "3.8.0", To: "3.8.4", Reason: "active link points at 3.8.0", Disruptive: true}}},
		{"package dir deleted", on("m1", "zk", func(c *probes.Component) { delete(c.Packages, "3.8.4") }),
			"m1", []Action{{Component: "zk", Kind: ActionInstall, From: "3.8.4", To: "3.8.4", Reason: "package dir missing", Disruptive: true}}},
		{"package dir incomplete", on("m1", "zk", func(c *probes.Component) { c.Packages["3.8.4"] = false }),
			"m1", []Action{{Component: "zk", Kind: ActionInstall, From: "3.8.4", To: "3.8.4", Reason: "package dir incomplete", Disruptive: true}}},
		{"artifact changed", on("m1", "zk", func(c *probes.Component) { c.Receipt.ArtifactSHA256 = "2222" }),
			"m1", []Action{{Component: "zk", Kind: ActionUpgrade, From: "3.8.4", To: "3.8.4", Reason: "artifact changed in manifest", Disruptive: true}}},
		{"config changed in manifest", on("m1", "zk", func(c *probes.Component) { c.Receipt.ConfigHash = "old" }),
			"m1", []Action{{Component: "zk", Kind: ActionReconfigure, From: "3.8.4", To: "3.8.4", Reason: "config changed in manifest", Disruptive: true, Effect: "restart"}}},
		{"file edited on disk", on("m1", "zk", func(c *probes.Component) {
			c.Files[0].SHA256 = "edited"
			c.FilesHash = manifests.ConfigHash(c.Files)
		}), "m1", []Action{{Component: "zk", Kind: ActionReconfigure, From: "3.8.4", To: "3.8.4", Reason: "zoo.cfg changed on disk", Disruptive: true, Effect: "restart"}}},
		{"file mode changed and file deleted", on("m1", "zk", func(c *probes.Component) {
			c.Files[0].Mode = 0o666
			c.Files = c.Files[:1]
			c.FilesHash = manifests.ConfigHash(c.Files)
		}), "m1", []Action{{Component: "zk", Kind: ActionReconfigure, From: "3.8.4", To: "3.8.4", Reason: "zoo.cfg mode changed on disk; myid missing on disk", Disruptive: true, Effect: "restart"}}},
		{"setuid bit dropped on disk", on("m1", "zk", func(c *probes.Component) {
			c.Files[0].Mode |= 0o4000
			c.FilesHash = manifests.ConfigHash(c.Files)
		}), "m1", []Action{{Component: "zk", Kind: ActionReconfigure, From: "3.8.4", To: "3.8.4", Reason: "zoo.cfg mode changed on disk", Disruptive: true, Effect: "restart"}}},
		{"files-only component edited", on("a1", "conf", func(c *probes.Component) {
			c.Files[0].SHA256 = "edited"
			c.FilesHash = "other"
		}), "a1", []Action{{Component: "conf", Kind: ActionReconfigure, From: "1", To: "1", Reason: "x.conf changed on disk"}}},
		{"unit changed in manifest", on("m1", "zk", func(c *probes.Component) { c.Receipt.UnitHash = "old" }),
			"m1", []Action{{Component: "zk", Kind: ActionReconfigure, From: "3.8.4", To: "3.8.4", Reason: "unit changed in manifest", Disruptive: true, Effect: "restart"}}},
		{"unit edited on disk", on("m1", "zk", func(c *probes.Component) { c.Unit.Hash = "edited" }),
			"m1", []Action{{Component: "zk", Kind: ActionReconfigure, From: "3.8.4", To: "3.8.4", Reason: "unit file changed on disk", Disruptive: true, Effect: "restart"}}},
		{"unit file deleted", on("m1", "zk", func(c *probes.Component) { c.Unit = probes.UnitState{} }),
			"m1", []Action{{Component: "zk", Kind: ActionReconfigure, From: "3.8.4", To: "3.8.4", Reason: "unit file missing", Effect: "restart"}}},
		{"unit stopped", on("m1", "zk", func(c *probes.Component) {
			c.Unit.ActiveState, c.Unit.SubState = "inactive", "dead"
			c.Health = probes.HealthResult{Checked: true, Message: "connection refused"}
		}), "m1", []Action{{Component: "zk", Kind: ActionRestart, From: "3.8.4", To: "3.8.4", Reason: "unit inactive (dead)"}}},
		{"unit failed", on("m1", "zk", func(c *probes.Component) { c.Unit.ActiveState, c.Unit.SubState = "failed", "failed" }),
			"m1", []Action{{Component: "zk", Kind: ActionRestart, From: "3.8.4", To: "3.8.4", Reason: "unit failed"}}},
		{"unit crash-looping", on("m1", "zk", func(c *probes.Component) { c.Unit.ActiveState, c.Unit.SubState = "activating", "auto-restart" }),
			"m1", []Action{{Component: "zk", Kind: ActionRestart, From: "3.8.4", To: "3.8.4", Reason: "unit restarting after a failure"}}},
		{"unit starting is left alone", on("m1", "zk", func(c *probes.Component) { c.Unit.ActiveState, c.Unit.SubState = "activating", "start" }),
			"m1", nil},
		{"health check failing", on("m1", "zk", func(c *probes.Component) { c.Health = probes.HealthResult{Checked: true, Message: "dial tcp: refused"} }),
			"m1", []Action{{Component: "zk", Kind: ActionRestart, From: "3.8.4", To: "3.8.4", Reason: "health check failed: dial tcp: refused", Disruptive: true}}},
		{"unit disabled", on("m1", "zk", func(c *probes.Component) { c.Unit.Enabled = false }),
			"m1", []Action{{Component: "zk", Kind: ActionRestart, From: "3.8.4", To: "3.8.4", Reason: "unit disabled", Disruptive: true}}},
		{"files-only component failing its check has nothing to restart", on("m1", "conf", func(c *probes.Component) {
			c.Health = probes.HealthResult{Checked: true, Message: "exit 1"}
		}), "m1", nil},
		{"absent component is removed", func(obs map[string]probes.Observed) {
			obs["m1"].Components["gone"] = oldVersion("gone", "1")
		}, "m1", []Action{{Component: "gone", Kind: ActionRemove, From: "1", Reason: "state: absent in manifest", Disruptive: true}}},
		{"role no longer matches", func(obs map[string]probes.Observed) {
			obs["m1"].Components["app"] = oldVersion("app", "2")
		}, "m1", []Action{{Component: "app", Kind: ActionRemove, From: "2", Reason: "node no longer has role agent", Disruptive: true}}},
		{"removals: unknown first, then reverse dependency order", func(obs map[string]probes.Observed) {
			zk := oldVersion("zk", "3.8.4")
			zk.Unit.ActiveState = "failed"
			obs["a1"].Components["zk"] = zk
			obs["a1"].Components["stray"] = oldVersion("stray", "9")
			obs["a1"].Components["gone"] = oldVersion("gone", "1")
		}, "a1", []Action{
			{Component: "stray", Kind: ActionRemove, From: "9", Reason: "not in the manifest", Disruptive: true},
			{Component: "gone", Kind: ActionRemove, From: "1", Reason: "state: absent in manifest", Disruptive: true},
			// zk stays on the masters: a1 leaves its group.
			{Component: "zk", Kind: ActionRemove, From: "3.8.4", Reason: "node no longer has role master", Membership: MemberLeave, Via: "m1", Members: "m1"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obs := diffObserved(d)
			if tc.change != nil {
				tc.change(obs)
			}
			p := Diff(d, obs)
			np := nodePlan(t, p, tc.node)
			if !np.Known || np.Paused {
				t.Fatalf("node plan = %+v", np)
			}
			for i := range tc.want {
				tc.want[i].Node = tc.node
			}
			assertActions(t, np.Actions, tc.want)
			other := "a1"
			if tc.node == "a1" {
				other = "m1"
			}
			if got := nodePlan(t, p, other).Actions; len(got) != 0 {
				t.Errorf("untouched node %s got actions %+v", other, got)
			}
		})
	}
}

func nodePlan(t *testing.T, p Plan, node string) NodePlan {
	t.Helper()
	for _, np := range p.Nodes {
		if np.Node == node {
			return np
		}
	}
	t.Fatalf("no plan for node %s", node)
	return NodePlan{}
}

func assertActions(t *testing.T, got, want []Action) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("actions:\n%s\nwant:\n%s", describeAll(got), describeAll(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("action %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func describeAll(as []Action) string {
	var b strings.Builder
	for _, a := range as {
		b.WriteString("  " + a.Node + ": " + a.Describe() + "\n")
	}
	return b.String()
}

func TestDiffUnknownNodesGetNoActions(t *testing.T) {
	d, err := compileYAML(t, "/srv/c.yaml", diffManifest)
	if err != nil {
		t.Fatal(err)
	}
	obs := map[string]probes.Observed{
		// a1 was never probed; m1 could not be reached. Both would need
		// everything installed if their state were taken as empty.
		"m1": {Node: "m1", Reason: "unreachable", Error: "dial tcp 127.0.2.1:22: connect: connection refused"},
	}
	p := Diff(d, obs)
	m1, a1 := nodePlan(t, p, "m1"), nodePlan(t, p, "a1")
	if m1.Known || len(m1.Actions) != 0 || m1.Reason != "unreachable (dial tcp 127.0.2.1:22: connect: connection refused)" {
		t.Errorf("m1 = %+v", m1)
	}
	if a1.Known || len(a1.Actions) != 0 || a1.Reason != "not probed yet" {
		t.Errorf("a1 = %+v", a1)
	}
	if !p.Empty() {
		t.Error("plan with only unknown nodes is not empty")
	}
}

func TestDiffPausedIsPlannedButMarked(t *testing.T) {
	d, err := compileYAML(t, "/srv/c.yaml", diffManifest)
	if err != nil {
		t.Fatal(err)
	}
	obs := diffObserved(d)
	obs["m1"].Components["zk"] = oldVersion("zk", "3.8.0")

	d.Node("m1").Paused = true
	np := nodePlan(t, Diff(d, obs), "m1")
	if !np.Paused || np.Reason != "node paused" || len(np.Actions) != 1 || np.Actions[0].Kind != ActionUpgrade {
		t.Errorf("paused node plan = %+v", np)
	}

	d.Node("m1").Paused = false
	d.Paused = true
	p := Diff(d, obs)
	if !p.Paused {
		t.Error("Plan.Paused not set for a paused cluster")
	}
	for _, np := range p.Nodes {
		if !np.Paused || np.Reason != "cluster paused" {
			t.Errorf("node %s in a paused cluster: %+v", np.Node, np)
		}
	}
	if nodePlan(t, p, "m1").Actions[0].Kind != ActionUpgrade {
		t.Error("a paused cluster's plan lost its actions")
	}
}

func TestPlanJSON(t *testing.T) {
	d, err := compileYAML(t, "/srv/c.yaml", diffManifest)
	if err != nil {
		t.Fatal(err)
	}
	obs := diffObserved(d)
	obs["m1"].Components["zk"] = oldVersion("zk", "3.8.0")
	var b bytes.Buffer
	if err := WritePlanJSON(&b, Diff(d, obs)); err != nil {
		t.Fatal(err)
	}
	var back Plan
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Generation != "gen-1" || len(back.Nodes) != 2 || back.Nodes[0].Actions[0].From != "3.8.0" {
		t.Errorf("round trip = %+v", back)
	}
	// A node with nothing to do lists "actions": [], never null.
	if !strings.Contains(b.String(), `"actions": []`) {
		t.Errorf("no empty actions list in:\n%s", b.String())
	}
}

func TestDescribe(t *testing.T) {
	cases := []struct {
		a    Action
		want string
	}{
		{Action{Kind: ActionInstall, Component: "c", To: "2", Reason: "not installed"}, "+ install c 2 (not installed)"},
		{Action{Kind: ActionInstall, Component: "c", From: "2", To: "2", Reason: "package dir missing"}, "+ install c 2 (package dir missing)"},
		{Action{Kind: ActionUpgrade, Component: "c", From: "1", To: "2", Reason: "version changed in manifest"}, "~ upgrade c 1 -> 2 (version changed in manifest)"},
		{Action{Kind: ActionUpgrade, Component: "c", From: "2", To: "2", Reason: "artifact changed in manifest"}, "~ upgrade c 2 (artifact changed in manifest)"},
		{Action{Kind: ActionRestart, Component: "c", From: "2", To: "2", Reason: "unit failed"}, "~ restart c 2 (unit failed)"},
		{Action{Kind: ActionRemove, Component: "c", From: "1", Reason: "not in the manifest"}, "- remove c 1 (not in the manifest)"},
		{Action{Kind: ActionRemove, Component: "c"}, "- remove c"},
	}
	for _, tc := range cases {
		if got := tc.a.Describe(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestPlanSummary(t *testing.T) {
	act := func(k ActionKind) Action { return Action{Kind: k} }
	cases := []struct {
		plan Plan
		want string
	}{
		{Plan{Nodes: []NodePlan{{Known: true}}}, "No changes. The cluster matches the manifest."},
		{Plan{Nodes: []NodePlan{{Known: true}, {}}}, "No changes on the nodes that answered; 1 node unknown."},
		{Plan{Nodes: []NodePlan{
			{Known: true, Actions: []Action{act(ActionInstall), act(ActionInstall), act(ActionUpgrade)}},
			{Known: true, Actions: []Action{act(ActionUpgrade), act(ActionUpgrade), act(ActionRestart)}},
			{}, {},
		}}, "Plan: 2 to install, 3 to upgrade, 0 to reconfigure, 1 to restart, 0 to remove; 2 nodes unknown."},
		{Plan{Paused: true, Nodes: []NodePlan{{Known: true, Paused: true, Actions: []Action{act(ActionRemove)}}}},
			"Plan: 0 to install, 0 to upgrade, 0 to reconfigure, 0 to restart, 1 to remove; cluster paused."},
	}
	for _, tc := range cases {
		if got := tc.plan.Summary(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// TestObservationValid: a last probe may be planned from under another
// Desired only if it saw everything the new plan rests on. The case
// that matters: converged on A, edited to B (the probe then asks for
// B's files), edited back to A: the probe taken for B never hashed A's
// files, and planning from it would reconfigure (restart) a healthy
// member for files "missing on disk".
func TestObservationValid(t *testing.T) {
	want := func(version string, files ...string) probes.Want {
		return probes.Want{Name: "zk", Version: version, Service: true, Files: files}
	}
	req := func(ws ...probes.Want) probes.Request {
		return probes.Request{InstallRoot: "/opt/drover", Components: ws}
	}
	obsAt := func(version string) probes.Observed {
		return probes.Observed{Known: true, Components: map[string]*probes.Component{"zk": oldVersion("zk", version)}}
	}
	aFiles := []string{"/opt/drover/packages/zk/A/conf/zoo.cfg"}
	bFiles := []string{"/opt/drover/packages/zk/B/conf/zoo.cfg"}
	health := &manifests.Health{TCP: &manifests.TCPCheck{Port: 2181}}
	cases := []struct {
		name        string
		want, taken probes.Request
		obs         probes.Observed
		valid       bool
	}{
		{"same request", req(want("A", aFiles...)), req(want("A", aFiles...)), obsAt("A"), true},
		{"back to A from a probe taken for B", req(want("A", aFiles...)), req(want("B", bFiles...)), obsAt("A"), false},
		{"node on A, edit to B: an upgrade whatever the files", req(want("B", bFiles...)), req(want("A", aFiles...)), obsAt("A"), true},
		{"a file the probe did not hash", req(want("A", append(aFiles, "/etc/zk.env")...)), req(want("A", aFiles...)), obsAt("A"), false},
		{"fewer files than were hashed", req(want("A")), req(want("A", aFiles...)), obsAt("A"), true},
		{"another health check", req(probes.Want{Name: "zk", Version: "A", Service: true, Health: health}), req(want("A")), obsAt("A"), false},
		{"a component the probe did not ask for", req(want("A"), probes.Want{Name: "ne", Version: "1"}), req(want("A")), obsAt("A"), false},
		{"another install root", probes.Request{InstallRoot: "/srv", Components: []probes.Want{want("A")}}, req(want("A")), obsAt("A"), false},
		{"an unknown node", req(want("A")), req(want("A")), probes.Observed{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ObservationValid(tc.want, tc.taken, tc.obs); got != tc.valid {
				t.Errorf("ObservationValid = %v, want %v", got, tc.valid)
			}
		})
	}
}

// TestDiffSaysArtifactWillNotFit: an upgrade whose artifact is larger
// than the free space the probe saw in the cache says so in its reason.
func TestDiffSaysArtifactWillNotFit(t *testing.T) {
	want := &DesiredComponent{Name: "zk", Version: "2", ArtifactPath: "/srv/zk.tar.gz", ArtifactSize: 175 << 20, ArtifactSHA256: "new"}
	up := Action{Kind: ActionUpgrade, Component: "zk", To: "2"}
	obs := func(free int64) probes.Observed {
		return probes.Observed{Known: true, OS: probes.OS{FreeBytes: free}, Components: map[string]*probes.Component{"zk": oldVersion("zk", "1")}}
	}
	if got := wontFit(up, want, obs(2<<20)); got != "; the artifact will not fit (2 MiB free in the cache, artifact 175 MiB)" {
		t.Errorf("2 MiB free: %q", got)
	}
	for name, o := range map[string]probes.Observed{"room enough": obs(1 << 30), "free space unknown": obs(-1)} {
		if got := wontFit(up, want, o); got != "" {
			t.Errorf("%s: %q, want nothing", name, got)
		}
	}
	if got := wontFit(Action{Kind: ActionReconfigure, Component: "zk", To: "2"}, want, obs(0)); got != "" {
		t.Errorf("a reconfigure uploads nothing: %q", got)
	}
}
