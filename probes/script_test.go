package probes

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
)

// runScript runs the real probe script through r and parses its output.
func runScript(t *testing.T, r *localRunner, req Request) Observed {
	t.Helper()
	s, err := Script(req)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Run(context.Background(), inventory.Target{Name: "n1"}, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || len(res.Stderr) > 0 {
		t.Fatalf("script exit %d, stderr %q", res.ExitCode, res.Stderr)
	}
	obs, err := Parse(res.Stdout)
	if err != nil {
		t.Fatalf("%v\noutput:\n%s", err, res.Stdout)
	}
	return obs
}

func execHealth(args ...string) *manifests.Health {
	return &manifests.Health{Exec: &manifests.ExecCheck{Command: args}, Timeout: "1m"}
}

// TestScriptNodeStates runs the real script against temp dirs laid out in
// the states a node goes through and checks what the parser makes of it.
func TestScriptNodeStates(t *testing.T) {
	type check func(t *testing.T, n *testNode, obs Observed)
	cases := []struct {
		name  string
		setup func(n *testNode) []Want
		check check
	}{
		{
			name: "fresh node, install root missing",
			setup: func(n *testNode) []Want {
				os.RemoveAll(n.root)
				return []Want{{Name: "zk", Service: true, Files: []string{filepath.Join(n.root, "packages/zk/1/zoo.cfg")}, Health: execHealth("true")}}
			},
			check: func(t *testing.T, n *testNode, obs Observed) {
				zk := obs.Components["zk"]
				if zk.Receipt != nil || zk.Active != "" || len(zk.Packages) != 0 || len(zk.Files) != 0 || len(zk.MissingFiles) != 1 {
					t.Errorf("zk = %+v", zk)
				}
				if zk.Unit.Exists || zk.Unit.ActiveState != "inactive" || zk.Health.Checked {
					t.Errorf("unit %+v health %+v", zk.Unit, zk.Health)
				}
				if obs.OS.FreeBytes <= 0 || obs.OS.Arch == "" || obs.OS.Hostname == "" {
					t.Errorf("os = %+v (free space is read from the nearest existing parent)", obs.OS)
				}
			},
		},
		{
			name: "receipt, active link, complete and incomplete packages",
			setup: func(n *testNode) []Want {
				n.receipt("zk", "3.8.0")
				n.pkg("zk", "3.7.1", true)
				n.pkg("zk", "3.8.0", false)
				n.activate("zk", "3.7.1")
				return []Want{{Name: "zk"}}
			},
			check: func(t *testing.T, n *testNode, obs Observed) {
				zk := obs.Components["zk"]
				want := map[string]bool{"3.7.1": true, "3.8.0": false}
				if zk.Receipt == nil || zk.Receipt.Version != "3.8.0" || zk.Receipt.Generation != "g1" || zk.Active != "3.7.1" || !reflect.DeepEqual(zk.Packages, want) {
					t.Errorf("zk = %+v receipt %+v", zk, zk.Receipt)
				}
			},
		},
		{
			name: "dangling active link and active dir that is not a link",
			setup: func(n *testNode) []Want {
				n.activate("a", "2.0")
				os.MkdirAll(filepath.Join(n.root, "active", "b"), 0o755)
				return []Want{{Name: "a"}, {Name: "b"}}
			},
			check: func(t *testing.T, n *testNode, obs Observed) {
				if a := obs.Components["a"]; a.Active != "2.0" || a.ActiveBroken {
					t.Errorf("a = %+v", a)
				}
				if b := obs.Components["b"]; b.Active != "" || !b.ActiveBroken {
					t.Errorf("b = %+v", b)
				}
				if calls := n.toolCalls(); calls["readlink"] != 1 {
					t.Errorf("readlink ran %d times, want 1 (only for the dangling link)", calls["readlink"])
				}
			},
		},
		{
			name: "files in sync, content drift, mode drift, missing",
			setup: func(n *testNode) []Want {
				for _, f := range []string{"same", "content", "mode"} {
					n.write(filepath.Join(n.root, "etc", f), "x=1\n", 0o644)
				}
				n.write(filepath.Join(n.root, "etc", "content"), "x=2\n", 0o644)
				os.Chmod(filepath.Join(n.root, "etc", "mode"), 0o600)
				var files []string
				for _, f := range []string{"same", "content", "mode", "gone"} {
					files = append(files, filepath.Join(n.root, "etc", f))
				}
				return []Want{{Name: "app", Files: files}}
			},
			check: func(t *testing.T, n *testNode, obs Observed) {
				app := obs.Components["app"]
				var want []manifests.FileDigest
				for _, f := range []string{"same", "content", "mode"} {
					want = append(want, manifests.Digests([]manifests.RenderedFile{{Path: filepath.Join(n.root, "etc", f), Mode: 0o644, Content: []byte("x=1\n")}})...)
				}
				if len(app.Files) != 3 || app.Files[0] != want[0] {
					t.Fatalf("files = %+v, want first %+v", app.Files, want[0])
				}
				if app.Files[1].SHA256 == want[1].SHA256 || app.Files[1].Mode != 0o644 {
					t.Errorf("content drift not seen: %+v", app.Files[1])
				}
				if app.Files[2].SHA256 != want[2].SHA256 || app.Files[2].Mode != 0o600 {
					t.Errorf("mode drift not seen: %+v", app.Files[2])
				}
				if !reflect.DeepEqual(app.MissingFiles, []string{filepath.Join(n.root, "etc", "gone")}) {
					t.Errorf("missing = %v", app.MissingFiles)
				}
				if app.FilesHash != manifests.ConfigHash(app.Files) || app.FilesHash == manifests.ConfigHash(want) {
					t.Errorf("files hash %s does not reflect the drift", app.FilesHash)
				}
			},
		},
		{
			name: "unit states, and a leftover unit of a component not wanted",
			setup: func(n *testNode) []Want {
				n.unit("web", "[Service]\nExecStart=/bin/true\n", "active running enabled")
				n.unit("db", "", "failed failed disabled") // wanted with a service, unit file gone
				n.receipt("old", "0.9")
				n.unit("old", "[Service]\n", "inactive dead enabled-runtime")
				n.unit("cfg", "[Service]\n", "") // files-only component with a stray unit file
				return []Want{{Name: "web", Service: true}, {Name: "db", Service: true}, {Name: "cfg"}, {Name: "plain"}}
			},
			check: func(t *testing.T, n *testNode, obs Observed) {
				web, db, old, cfg, plain := obs.Components["web"], obs.Components["db"], obs.Components["old"], obs.Components["cfg"], obs.Components["plain"]
				if !web.Unit.Exists || web.Unit.Hash != sha256Hex("[Service]\nExecStart=/bin/true\n") || web.Unit.ActiveState != "active" || web.Unit.SubState != "running" || !web.Unit.Enabled {
					t.Errorf("web unit = %+v", web.Unit)
				}
				if db.Unit.Exists || db.Unit.ActiveState != "failed" || db.Unit.Enabled {
					t.Errorf("db unit = %+v", db.Unit)
				}
				if old == nil || old.Receipt == nil || !old.Unit.Exists || old.Unit.ActiveState != "inactive" || !old.Unit.Enabled {
					t.Errorf("old = %+v", old)
				}
				if !cfg.Unit.Exists || cfg.Unit.ActiveState != "inactive" {
					t.Errorf("cfg unit = %+v", cfg.Unit)
				}
				if plain.Unit != (UnitState{}) {
					t.Errorf("plain has no unit and wants none, got %+v", plain.Unit)
				}
			},
		},
		{
			name: "exec health: ok, failing, timed out, not applicable",
			setup: func(n *testNode) []Want {
				for _, c := range []string{"ok", "bad", "slow", "files"} {
					n.receipt(c, "1")
				}
				n.unit("ok", "[Service]\n", "active running enabled")
				n.unit("bad", "[Service]\n", "active running enabled")
				n.unit("slow", "[Service]\n", "active running enabled")
				n.unit("down", "[Service]\n", "inactive dead enabled")
				slow := execHealth("sleep", "10")
				slow.Timeout = "1s"
				return []Want{
					{Name: "ok", Service: true, Health: execHealth("sh", "-c", "test \"$(pwd)\" = /")},
					{Name: "bad", Service: true, Health: execHealth("sh", "-c", "exit 3")},
					{Name: "slow", Service: true, Health: slow},
					{Name: "down", Service: true, Health: execHealth("true")},
					{Name: "files", Health: execHealth("false")},
					{Name: "absent", Health: execHealth("true")},
				}
			},
			check: func(t *testing.T, n *testNode, obs Observed) {
				want := map[string]HealthResult{
					"ok":     {Checked: true, OK: true, Message: "exit 0"},
					"bad":    {Checked: true, Message: "exit 3"},
					"slow":   {Checked: true, Message: "timed out (exit 124)"},
					"down":   {},
					"files":  {Checked: true, Message: "exit 1"},
					"absent": {},
				}
				for name, w := range want {
					if got := obs.Components[name].Health; got != w {
						t.Errorf("%s health = %+v, want %+v", name, got, w)
					}
				}
			},
		},
		{
			name: "leader check: leads, follows, not applicable",
			setup: func(n *testNode) []Want {
				for _, c := range []string{"lead", "follow", "down"} {
					n.receipt(c, "1")
				}
				n.unit("lead", "[Service]\n", "active running enabled")
				n.unit("follow", "[Service]\n", "active running enabled")
				n.unit("down", "[Service]\n", "failed failed enabled")
				return []Want{
					{Name: "lead", Service: true, Health: execHealth("true"), Leader: execHealth("sh", "-c", "test \"$(pwd)\" = /")},
					{Name: "follow", Service: true, Health: &manifests.Health{TCP: &manifests.TCPCheck{Port: 1}}, Leader: execHealth("sh", "-c", "exit 1")},
					{Name: "down", Service: true, Leader: execHealth("true")},
				}
			},
			check: func(t *testing.T, n *testNode, obs Observed) {
				want := map[string]HealthResult{
					"lead":   {Checked: true, OK: true, Message: "exit 0"},
					"follow": {Checked: true, Message: "exit 1"},
					"down":   {},
				}
				for name, w := range want {
					if got := obs.Components[name].Leader; got != w {
						t.Errorf("%s leader = %+v, want %+v", name, got, w)
					}
				}
				if h := obs.Components["lead"].Health; !h.OK {
					t.Errorf("lead health = %+v: the leader line must not replace it", h)
				}
			},
		},
		{
			name: "receipts dir junk is ignored",
			setup: func(n *testNode) []Want {
				n.receipt("good", "1")
				n.write(filepath.Join(n.root, "receipts", "Bad Name.json"), "{}", 0o644)
				n.write(filepath.Join(n.root, "receipts", "notes.txt"), "{}", 0o644)
				n.write(filepath.Join(n.root, "receipts", ".hidden.json"), "{}", 0o644)
				return nil
			},
			check: func(t *testing.T, n *testNode, obs Observed) {
				if len(obs.Components) != 1 || obs.Components["good"] == nil || obs.Components["good"].Receipt.Version != "1" {
					t.Errorf("components = %v", obs.Components)
				}
			},
		},
		{
			// The shell reads receipts itself: every shape of file must
			// come through as what it says, and content that looks like
			// probe output must stay data.
			name: "receipt files of every shape",
			setup: func(n *testNode) []Want {
				rd := filepath.Join(n.root, "receipts")
				n.write(filepath.Join(rd, "pretty.json"), "{\n  \"component\": \"pretty\",\n  \"version\": \"2\"\n}\n", 0o644)
				n.write(filepath.Join(rd, "nonl.json"), `{"component":"nonl","version":"3"}`, 0o644)
				n.write(filepath.Join(rd, "blank.json"), "", 0o644)
				n.write(filepath.Join(rd, "forged.json"), "x\nend\ncomponent evil\nreceipt -\nactive -\nend\ndone\n", 0o644)
				n.write(filepath.Join(rd, "back.json"), `{"component":"back","version":"a\\b"}`+"\n", 0o644)
				os.MkdirAll(filepath.Join(rd, "dir.json"), 0o755)
				return nil
			},
			check: func(t *testing.T, n *testNode, obs Observed) {
				if len(obs.Components) != 6 || obs.Components["evil"] != nil {
					t.Fatalf("components = %v", obs.Components)
				}
				if r := obs.Components["pretty"].Receipt; r == nil || r.Version != "2" {
					t.Errorf("pretty = %+v", obs.Components["pretty"])
				}
				if r := obs.Components["nonl"].Receipt; r == nil || r.Version != "3" {
					t.Errorf("nonl = %+v", obs.Components["nonl"])
				}
				if r := obs.Components["back"].Receipt; r == nil || r.Version != `a\b` {
					t.Errorf("back = %+v", obs.Components["back"])
				}
				for _, name := range []string{"blank", "forged"} {
					if c := obs.Components[name]; c.Receipt != nil || c.ReceiptError == "" {
						t.Errorf("%s = %+v, want a receipt error", name, c)
					}
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newLocalRunner(t)
			n := newTestNode(t, r)
			req := n.request(c.setup(n)...)
			n.toolCalls()
			obs := runScript(t, r, req)
			c.check(t, n, obs)
		})
	}
}

// TestScriptForksEachToolOnce: the tools run once per probe whatever the
// number of components and files, receipts are read by the shell itself,
// and nothing else starts (every process costs the node a fork and an
// exec).
func TestScriptForksEachToolOnce(t *testing.T) {
	r := newLocalRunner(t)
	n := newTestNode(t, r)
	var ws []Want
	for _, c := range []string{"a", "b", "c", "d"} {
		n.receipt(c, "1")
		n.pkg(c, "1", true)
		n.activate(c, "1")
		n.unit(c, "[Service]\n", "active running enabled")
		var files []string
		for _, f := range []string{"x", "y", "z"} {
			p := filepath.Join(n.root, "packages", c, "1", f)
			n.write(p, f, 0o644)
			files = append(files, p)
		}
		ws = append(ws, Want{Name: c, Service: true, Files: files})
	}
	n.receipt("leftover", "1")
	n.unit("leftover", "[Service]\n", "")
	n.toolCalls()
	obs := runScript(t, r, n.request(ws...))
	if len(obs.Components) != 5 || len(obs.Components["d"].Files) != 3 || !obs.Components["leftover"].Unit.Exists {
		t.Fatalf("components = %+v", obs.Components)
	}
	want := map[string]int{"uname": 1, "df": 1, "stat": 1, "sha256sum": 1, "systemctl": 1}
	if got := n.toolCalls(); !reflect.DeepEqual(got, want) {
		t.Errorf("tool runs = %v, want %v", got, want)
	}
}

// TestScriptShells runs the same node under dash, bash in POSIX mode and
// busybox sh with only busybox's own tools on PATH (and no systemctl),
// and expects the same answers.
func TestScriptShells(t *testing.T) {
	setup := func(n *testNode) Request {
		n.receipt("zk", "3.8.0")
		n.pkg("zk", "3.8.0", true)
		n.activate("zk", "3.8.0")
		f := filepath.Join(n.root, "packages/zk/3.8.0/conf/zoo cfg") // a space in the path
		n.write(f, "tickTime=2000\n", 0o640)
		n.unit("zk", "[Service]\n", "active running enabled")
		n.receipt("old", "1")
		return n.request(Want{Name: "zk", Files: []string{f, f + ".gone"}, Health: execHealth("sh", "-c", "exit 0")})
	}
	shells := map[string][]string{
		"sh":   {"/bin/sh", "-c"},
		"dash": {"dash", "-c"},
		"bash": {"bash", "--posix", "-c"},
	}
	if bb, err := exec.LookPath("busybox"); err == nil {
		shells["busybox"] = []string{bb, "sh", "-c"}
	} else {
		t.Log("busybox not installed: busybox sh not covered (apt-get install busybox)")
	}
	results := map[string]Observed{}
	for name, shell := range shells {
		if _, err := exec.LookPath(shell[0]); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		r := newLocalRunner(t, shell...)
		n := newTestNode(t, r)
		req := setup(n)
		if name == "busybox" {
			// A busybox-only node: every tool is a busybox applet, and
			// there is no systemctl at all.
			bin := filepath.Join(r.dir, "bbin")
			os.MkdirAll(bin, 0o755)
			if out, err := exec.Command(shell[0], "--install", "-s", bin).CombinedOutput(); err != nil {
				t.Fatalf("busybox --install: %v %s", err, out)
			}
			r.env = append(r.env, "PATH="+bin)
		}
		obs := runScript(t, r, req)
		zk := obs.Components["zk"]
		if len(zk.Files) != 1 || zk.Files[0].Mode != 0o640 || zk.Files[0].SHA256 != sha256Hex("tickTime=2000\n") || len(zk.MissingFiles) != 1 {
			t.Errorf("%s: files = %+v missing %v", name, zk.Files, zk.MissingFiles)
		}
		if zk.Receipt == nil || zk.Active != "3.8.0" || !zk.Packages["3.8.0"] || !zk.Health.OK || obs.Components["old"] == nil {
			t.Errorf("%s: zk = %+v", name, zk)
		}
		if obs.OS.ID == "" || obs.OS.Arch == "" || obs.OS.FreeBytes <= 0 {
			t.Errorf("%s: os = %+v", name, obs.OS)
		}
		// Paths differ per temp dir; compare the rest.
		for _, c := range obs.Components {
			for i := range c.Files {
				c.Files[i].Path = strings.TrimPrefix(c.Files[i].Path, n.root)
			}
			c.MissingFiles = nil
			c.FilesHash = ""
		}
		obs.OS.FreeBytes = 0
		results[name] = obs
	}
	bbUnit := UnitState{Exists: true, Hash: sha256Hex("[Service]\n"), ActiveState: "unknown", SubState: "unknown"}
	if got, ok := results["busybox"]; ok && got.Components["zk"].Unit != bbUnit {
		t.Errorf("busybox without systemctl: zk unit = %+v, want %+v", got.Components["zk"].Unit, bbUnit)
	}
	for name, obs := range results {
		if name == "busybox" {
			obs.Components["zk"].Unit = results["dash"].Components["zk"].Unit
		}
		if !reflect.DeepEqual(obs, results["dash"]) {
			t.Errorf("%s differs from dash:\n%+v\n%+v", name, obs, results["dash"])
		}
	}
}

// TestScriptQuotesEverything: hostile paths and health arguments reach
// the node as data, never as shell code.
func TestScriptQuotesEverything(t *testing.T) {
	r := newLocalRunner(t)
	n := newTestNode(t, r)
	pwned := filepath.Join(r.dir, "pwned")
	evil := filepath.Join(n.root, "etc", "a'b $(touch "+pwned+") `touch "+pwned+"` ; touch "+pwned)
	n.write(evil, "data", 0o644)
	n.receipt("app", "1")
	req := n.request(Want{Name: "app", Files: []string{evil}, Health: execHealth("sh", "-c", `test "$1" = "x'; touch `+pwned+`"`, "sh", "x'; touch "+pwned)})
	obs := runScript(t, r, req)
	app := obs.Components["app"]
	if len(app.Files) != 1 || app.Files[0].Path != evil || app.Files[0].SHA256 != sha256Hex("data") {
		t.Errorf("files = %+v", app.Files)
	}
	if !app.Health.OK {
		t.Errorf("health = %+v: the argument did not arrive intact", app.Health)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("a value was run as shell code")
	}
}

func TestScriptRefusesUnsafeRequests(t *testing.T) {
	ok := Want{Name: "app", Files: []string{"/etc/app.conf"}}
	cases := map[string]Request{
		"relative root":        {InstallRoot: "opt/drover", Components: []Want{ok}},
		"relative unit dir":    {InstallRoot: "/opt/drover", UnitDir: "units"},
		"bad name":             {InstallRoot: "/opt/drover", Components: []Want{{Name: "App;rm"}}},
		"name with space":      {InstallRoot: "/opt/drover", Components: []Want{{Name: "a b"}}},
		"duplicate":            {InstallRoot: "/opt/drover", Components: []Want{ok, ok}},
		"relative file":        {InstallRoot: "/opt/drover", Components: []Want{{Name: "a", Files: []string{"conf/x"}}}},
		"newline in file":      {InstallRoot: "/opt/drover", Components: []Want{{Name: "a", Files: []string{"/etc/x\ny"}}}},
		"backslash in file":    {InstallRoot: "/opt/drover", Components: []Want{{Name: "a", Files: []string{`/etc/x\y`}}}},
		"empty exec":           {InstallRoot: "/opt/drover", Components: []Want{{Name: "a", Health: execHealth()}}},
		"NUL in exec argument": {InstallRoot: "/opt/drover", Components: []Want{{Name: "a", Health: execHealth("true", "a\x00b")}}},
		"empty leader exec":    {InstallRoot: "/opt/drover", Components: []Want{{Name: "a", Leader: execHealth()}}},
		"tcp leader check":     {InstallRoot: "/opt/drover", Components: []Want{{Name: "a", Leader: &manifests.Health{TCP: &manifests.TCPCheck{Port: 1}}}}},
		"health of no kind":    {InstallRoot: "/opt/drover", Components: []Want{{Name: "a", Health: &manifests.Health{}}}},
		"health of two kinds":  {InstallRoot: "/opt/drover", Components: []Want{{Name: "a", Health: &manifests.Health{TCP: &manifests.TCPCheck{Port: 1}, Exec: &manifests.ExecCheck{Command: []string{"true"}}}}}},
	}
	for name, req := range cases {
		if _, err := Script(req); err == nil {
			t.Errorf("%s: Script accepted %+v", name, req)
		}
	}
	if _, err := Script(Request{InstallRoot: "/opt/drover", Components: []Want{ok}}); err != nil {
		t.Errorf("good request refused: %v", err)
	}
}
