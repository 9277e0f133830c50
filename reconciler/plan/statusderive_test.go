package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/probes"
)

func TestNodeStatuses(t *testing.T) {
	d, err := compileYAML(t, "/srv/c.yaml", diffManifest)
	if err != nil {
		t.Fatal(err)
	}
	probedAt := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	type comp struct {
		name, desired, observed string
		sync                    Sync
		health                  Health
		reason                  string
	}
	cases := []struct {
		name      string
		spoil     func(obs map[string]probes.Observed)
		converged bool
		reachable bool
		reason    string
		comps     []comp // m1's
	}{
		{"converged", nil, true, true, "", []comp{
			{"zk", "3.8.4", "3.8.4", Synced, Healthy, ""},
			{"conf", "1", "1", Synced, Healthy, ""},
		}},
		{"unreachable is Unknown, never OutOfSync", func(obs map[string]probes.Observed) {
			obs["m1"] = probes.Observed{Node: "m1", Reason: "auth", Error: "no supported methods remain", ProbedAt: probedAt}
		}, false, false, "auth (no supported methods remain)", []comp{
			{"zk", "3.8.4", "", SyncUnknown, HealthUnknown, "auth (no supported methods remain)"},
			{"conf", "1", "", SyncUnknown, HealthUnknown, "auth (no supported methods remain)"},
		}},
		{"upgrade pending", func(obs map[string]probes.Observed) {
			obs["m1"].Components["zk"] = oldVersion("zk", "3.8.0")
		}, false, true, "zk: upgrade 3.8.0 -> 3.8.4 pending", []comp{
			{"zk", "3.8.4", "3.8.0", OutOfSync, Healthy, "upgrade 3.8.0 -> 3.8.4 pending"},
			{"conf", "1", "1", Synced, Healthy, ""},
		}},
		{"not installed is Missing", func(obs map[string]probes.Observed) {
			delete(obs["m1"].Components, "zk")
		}, false, true, "zk: install 3.8.4 pending", []comp{
			{"zk", "3.8.4", "", OutOfSync, Missing, "install 3.8.4 pending"},
			{"conf", "1", "1", Synced, Healthy, ""},
		}},
		{"stopped unit is Synced but Degraded", func(obs map[string]probes.Observed) {
			u := &obs["m1"].Components["zk"].Unit
			u.ActiveState, u.SubState = "failed", "failed"
		}, false, true, "zk: restart 3.8.4 pending (unit failed)", []comp{
			{"zk", "3.8.4", "3.8.4", Synced, Degraded, "restart 3.8.4 pending (unit failed)"},
			{"conf", "1", "1", Synced, Healthy, ""},
		}},
		{"starting unit is Progressing with no action", func(obs map[string]probes.Observed) {
			u := &obs["m1"].Components["zk"].Unit
			u.ActiveState, u.SubState = "activating", "start"
		}, false, true, "zk: unit activating", []comp{
			{"zk", "3.8.4", "3.8.4", Synced, Progressing, "unit activating"},
			{"conf", "1", "1", Synced, Healthy, ""},
		}},
		{"files-only component failing its check is Degraded", func(obs map[string]probes.Observed) {
			obs["m1"].Components["conf"].Health = probes.HealthResult{Checked: true, Message: "exit status 1"}
		}, false, true, "conf: health check failed: exit status 1", []comp{
			{"zk", "3.8.4", "3.8.4", Synced, Healthy, ""},
			{"conf", "1", "1", Synced, Degraded, "health check failed: exit status 1"},
		}},
		{"something to remove", func(obs map[string]probes.Observed) {
			obs["m1"].Components["gone"] = oldVersion("gone", "1")
		}, false, true, "gone: remove 1 pending (state: absent in manifest)", []comp{
			{"zk", "3.8.4", "3.8.4", Synced, Healthy, ""},
			{"conf", "1", "1", Synced, Healthy, ""},
			{"gone", "", "1", OutOfSync, Healthy, "remove 1 pending (state: absent in manifest)"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obs := diffObserved(d)
			if tc.spoil != nil {
				tc.spoil(obs)
			}
			st := NodeStatuses(d, obs, Diff(d, obs))
			if len(st) != 2 || st[0].Name != "m1" || st[1].Name != "a1" {
				t.Fatalf("statuses = %+v", st)
			}
			m1 := st[0]
			if m1.Converged != tc.converged || m1.Reachable != tc.reachable || m1.Reason != tc.reason || m1.Address != "127.0.2.1" {
				t.Errorf("m1 = converged %v reachable %v reason %q address %q", m1.Converged, m1.Reachable, m1.Reason, m1.Address)
			}
			if !m1.LastProbe.Equal(obs["m1"].ProbedAt) {
				t.Errorf("LastProbe = %v, want %v", m1.LastProbe, obs["m1"].ProbedAt)
			}
			if tc.reachable != (m1.ObservedGeneration == "gen-1") {
				t.Errorf("ObservedGeneration = %q", m1.ObservedGeneration)
			}
			if len(m1.Components) != len(tc.comps) {
				t.Fatalf("components = %+v", m1.Components)
			}
			for i, want := range tc.comps {
				got := m1.Components[i]
				if (comp{got.Name, got.DesiredVersion, got.ObservedVersion, got.Sync, got.Health, got.Reason}) != want {
					t.Errorf("component %d = %+v, want %+v", i, got, want)
				}
			}
			if !st[1].Converged {
				t.Errorf("a1 is not converged: %s", st[1].Reason)
			}
		})
	}
}

func TestNodeStatusesPausedReason(t *testing.T) {
	d, err := compileYAML(t, "/srv/c.yaml", diffManifest)
	if err != nil {
		t.Fatal(err)
	}
	obs := diffObserved(d)
	obs["m1"].Components["zk"] = oldVersion("zk", "3.8.0")
	d.Node("m1").Paused = true
	m1 := NodeStatuses(d, obs, Diff(d, obs))[0]
	if !m1.Paused || m1.Converged || m1.Reason != "node paused; zk: upgrade 3.8.0 -> 3.8.4 pending" {
		t.Errorf("m1 = %+v", m1)
	}
}

func TestNodeStatusesReasonIsBounded(t *testing.T) {
	d, err := compileYAML(t, "/srv/c.yaml", diffManifest)
	if err != nil {
		t.Fatal(err)
	}
	obs := diffObserved(d)
	for _, name := range []string{"s1", "s2", "s3", "s4"} {
		obs["a1"].Components[name] = oldVersion(name, "1")
	}
	a1 := NodeStatuses(d, obs, Diff(d, obs))[1]
	want := "s1: remove 1 pending (not in the manifest); s2: remove 1 pending (not in the manifest); " +
		"s3: remove 1 pending (not in the manifest); and 1 more"
	if a1.Reason != want {
		t.Errorf("reason = %q", a1.Reason)
	}
}

// TestNodeStatusesLeader: the member whose leader check passed is marked.
func TestNodeStatusesLeader(t *testing.T) {
	d, err := compileYAML(t, "/srv/c.yaml", diffManifest)
	if err != nil {
		t.Fatal(err)
	}
	obs := diffObserved(d)
	obs["m1"].Components["zk"].Leader = probes.HealthResult{Checked: true, OK: true, Message: "exit 0"}
	st := NodeStatuses(d, obs, Diff(d, obs))
	for _, c := range st[0].Components {
		if c.Leader != (c.Name == "zk") {
			t.Errorf("m1 %s: leader %v", c.Name, c.Leader)
		}
	}
}

// TestUnitHealth is the one reading of systemd's unit states that the
// status, the diff and the rollout share.
func TestUnitHealth(t *testing.T) {
	cases := []struct {
		active, sub string
		health      Health
		running     bool // unitRunning: an action that stops it costs availability
	}{
		{"active", "running", Healthy, true},
		{"reloading", "reload", Healthy, true},
		{"activating", "start", Progressing, true},
		{"activating", "auto-restart", Degraded, false},
		{"deactivating", "stop-sigterm", Degraded, false},
		{"failed", "failed", Degraded, false},
		{"inactive", "dead", Degraded, false},
		{"unknown", "unknown", Degraded, false},
	}
	for _, tc := range cases {
		u := probes.UnitState{Exists: true, ActiveState: tc.active, SubState: tc.sub}
		if h, why := unitHealth(u); h != tc.health || (h == Healthy) != (why == "") {
			t.Errorf("%s (%s): %s %q, want %s", tc.active, tc.sub, h, why, tc.health)
		}
		if got := unitRunning(&probes.Component{Unit: u}); got != tc.running {
			t.Errorf("%s (%s): running %t, want %t", tc.active, tc.sub, got, tc.running)
		}
	}
}

// TestUnwantedCrashLoopIsDegraded: a component to remove whose unit
// crash-loops is down, as it would be for a component the node should
// have (it read as Progressing).
func TestUnwantedCrashLoopIsDegraded(t *testing.T) {
	d, err := compileYAML(t, "/srv/c.yaml", diffManifest)
	if err != nil {
		t.Fatal(err)
	}
	obs := diffObserved(d)
	gone := oldVersion("gone", "1")
	gone.Unit.ActiveState, gone.Unit.SubState = "activating", "auto-restart"
	obs["m1"].Components["gone"] = gone
	for _, cs := range StatusOf(d, obs)[0].Components {
		if cs.Name == "gone" && cs.Health != Degraded {
			t.Errorf("gone = %+v, want Degraded", cs)
		}
	}
}

// TestNodeStatusesDetail: the facts, placement, receipts and probe error
// the console shows come from the desired node and its probe.
func TestNodeStatusesDetail(t *testing.T) {
	d, err := compileYAML(t, "/srv/c.yaml", strings.Replace(diffManifest,
		"{name: m1, address: 127.0.2.1, roles: [master]}", "{name: m1, address: 127.0.2.1, roles: [master], labels: {zone: b}}", 1))
	if err != nil {
		t.Fatal(err)
	}
	obs := diffObserved(d)
	m1 := obs["m1"]
	m1.OS = probes.OS{ID: "debian", VersionID: "12", Arch: "x86_64", Hostname: "m1", FreeBytes: 5 << 30}
	m1.Duration = 120 * time.Millisecond
	m1.Components["zk"] = oldVersion("zk", "3.8.0")
	obs["m1"] = m1

	st := NodeStatuses(d, obs, Diff(d, obs))[0]
	if f := st.Facts; f == nil || *f != (NodeFacts{OSID: "debian", OSVersion: "12", Arch: "x86_64", Hostname: "m1", FreeBytes: 5 << 30}) {
		t.Errorf("facts = %+v", st.Facts)
	}
	if len(st.Roles) != 1 || st.Roles[0] != "master" || st.Labels["zone"] != "b" {
		t.Errorf("roles %v labels %v", st.Roles, st.Labels)
	}
	if st.ProbeDuration != 120*time.Millisecond || st.ProbeError != "" {
		t.Errorf("probe duration %s error %q", st.ProbeDuration, st.ProbeError)
	}
	zk := st.Components[0]
	if zk.Receipt == nil || zk.Receipt.Version != "3.8.0" || zk.Receipt.ConfigHash != "old" || zk.Active != "3.8.0" || zk.Unit != "active (running)" {
		t.Errorf("zk detail: receipt %+v active %q unit %q", zk.Receipt, zk.Active, zk.Unit)
	}
	// The status holds a copy: changing it leaves the observation alone.
	zk.Receipt.Version = "x"
	if obs["m1"].Components["zk"].Receipt.Version != "3.8.0" {
		t.Error("the status shares the probe's receipt")
	}

	obs["m1"] = probes.Observed{Node: "m1", Reason: "unreachable", Error: "dial tcp 127.0.2.1:22: i/o timeout", ProbedAt: time.Now()}
	st = NodeStatuses(d, obs, Diff(d, obs))[0]
	if st.ProbeError != "unreachable: dial tcp 127.0.2.1:22: i/o timeout" || st.Facts != nil || st.LastProbeAttempt.IsZero() {
		t.Errorf("unreachable: probe error %q facts %+v attempt %v", st.ProbeError, st.Facts, st.LastProbeAttempt)
	}
}
