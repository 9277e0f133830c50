package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/drover-project/drover/api"
	"github.com/drover-project/drover/console"
	"github.com/drover-project/drover/reconciler/plan"
)

// refusingManifest is a two-node cluster whose nodes refuse SSH at
// once (port 1 on a loopback address of this package's range), so plan
// and probe run to the end without a node and report it Unknown.
func refusingManifest(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	key, knownHosts := sshFiles(t)
	manifest := `apiVersion: drover/v1
kind: Cluster
metadata: {name: t}
spec:
  ssh: {user: root, port: 1, connectTimeout: 2s, configFile: /dev/null, knownHostsFile: ` + knownHosts + `, identityFiles: [` + key + `]}
  nodes:
    - {name: n1, address: 127.0.1.248, roles: [master]}
    - {name: n2, address: 127.0.1.249, roles: [master]}
  components:
    - name: app
      version: 1.0.0
      artifact: {url: "https://example.com/app.tar.gz", sha256: "1111111111111111111111111111111111111111111111111111111111111111"}
      files:
        - {path: conf/app.cfg, template: "x={{ .Node.Name }}\n"}
`
	path := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// fakeDaemon serves a status on a loopback address of this package's
// range, as `drover daemon` does on --addr.
func fakeDaemon(t *testing.T) string {
	addr, _ := fakeDaemonTokens(t)
	return addr
}

// fakeDaemonTokens is fakeDaemon that also records the console token of
// each request.
func fakeDaemonTokens(t *testing.T) (string, *[]string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.1.200:0")
	if err != nil {
		t.Fatal(err)
	}
	st := plan.ClusterStatus{Cluster: "t", Generation: 3, Hash: "abcdef0123456789", LoadSuccess: true,
		Nodes: []plan.NodeStatus{{Name: "n1", Reachable: true, Converged: true}}}
	var tokens []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokens = append(tokens, r.Header.Get(console.HeaderToken))
		if r.URL.Path != api.PathStatus {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(st)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return ln.Addr().String(), &tokens
}

// TestOutputContract runs every read command with every -o value (and a
// wrong one) and checks the exit code, and that json and yaml parse as
// one document of the documented top-level shape.
func TestOutputContract(t *testing.T) {
	example := "../../examples/demo/cluster.yaml"
	unreachable := refusingManifest(t)
	addr := fakeDaemon(t)
	commands := []struct {
		name string
		args []string
		code int    // exit status for a valid -o
		key  string // a top-level field of the JSON object, "" for an array
	}{
		{"validate", []string{"validate", "-f", example}, 0, "manifests"},
		{"render", []string{"render", "-f", example, "--node", "n1"}, 0, "files"},
		{"plan", []string{"plan", "-f", unreachable}, 1, "unprobed"},
		{"probe", []string{"probe", "-f", unreachable}, 1, ""},
		{"status", []string{"status", "--addr", addr}, 0, "nodes"},
	}
	for _, c := range commands {
		for _, format := range []string{"", "text", "json", "yaml", "xml", "JSON"} {
			t.Run(c.name+"/"+format, func(t *testing.T) {
				args := c.args
				if format != "" {
					args = append(append([]string{}, args...), "-o", format)
				}
				code, out, errOut := runDrover(t, args...)
				switch format {
				case "xml", "JSON":
					if code != 1 || !strings.Contains(errOut, "must be one of text, json, yaml") || out != "" {
						t.Fatalf("-o %s: exit %d, stdout %q, stderr %q; want exit 1, nothing printed, the formats named", format, code, out, errOut)
					}
					return
				}
				if code != c.code {
					t.Fatalf("exit %d, want %d; stderr:\n%s", code, c.code, errOut)
				}
				if out == "" {
					t.Fatal("printed nothing")
				}
				var doc any
				switch format {
				case "json":
					if err := json.Unmarshal([]byte(out), &doc); err != nil {
						t.Fatalf("not JSON: %v\n%s", err, out)
					}
				case "yaml":
					if err := yaml.Unmarshal([]byte(out), &doc); err != nil {
						t.Fatalf("not YAML: %v\n%s", err, out)
					}
				default:
					if json.Valid([]byte(out)) {
						t.Fatalf("text output is JSON:\n%s", out)
					}
					return
				}
				if c.key == "" {
					if _, ok := doc.([]any); !ok {
						t.Fatalf("want an array, got %T", doc)
					}
					return
				}
				m, ok := doc.(map[string]any)
				if !ok {
					t.Fatalf("want an object, got %T", doc)
				}
				if _, ok := m[c.key]; !ok {
					t.Fatalf("no %q field in:\n%s", c.key, out)
				}
			})
		}
	}
}

// TestJSONAndYAMLAgree: -o yaml is the same document as -o json.
func TestJSONAndYAMLAgree(t *testing.T) {
	example := "../../examples/dcos/cluster.yaml"
	for _, args := range [][]string{
		{"validate", "-f", example},
		{"render", "-f", example, "--node", "m1"},
	} {
		_, j, _ := runDrover(t, append(args, "-o", "json")...)
		_, y, _ := runDrover(t, append(args, "-o", "yaml")...)
		fromYAML, err := yaml.YAMLToJSON([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if err := json.Unmarshal([]byte(j), &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(fromYAML, &b); err != nil {
			t.Fatal(err)
		}
		aj, _ := json.Marshal(a)
		bj, _ := json.Marshal(b)
		if string(aj) != string(bj) {
			t.Errorf("%v: json and yaml differ:\n%s\n%s", args, aj, bj)
		}
	}
}

// TestPlanExitCode: an unprobed node makes plan exit 1 even when other
// nodes have changes; changes alone exit 2.
func TestPlanExitCode(t *testing.T) {
	change := plan.NodePlan{Node: "a", Known: true, Actions: []plan.Action{{Node: "a", Component: "app", Kind: plan.ActionInstall}}}
	calm := plan.NodePlan{Node: "b", Known: true, Actions: []plan.Action{}}
	lost := plan.NodePlan{Node: "c", Reason: "unreachable (connection refused)", Actions: []plan.Action{}}
	for _, tc := range []struct {
		name  string
		nodes []plan.NodePlan
		want  int
	}{
		{"nothing to do", []plan.NodePlan{calm}, 0},
		{"changes", []plan.NodePlan{change, calm}, 2},
		{"unprobed", []plan.NodePlan{calm, lost}, 1},
		{"changes and unprobed", []plan.NodePlan{change, lost}, 1},
	} {
		p := plan.Plan{Nodes: tc.nodes}
		if got := planExitCode(p); got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.name, got, tc.want)
		}
	}
	var b strings.Builder
	p := plan.Plan{Nodes: []plan.NodePlan{change, lost}}
	if err := writePlan(&b, outputJSON, p); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Unprobed []unprobedNode `json:"unprobed"`
	}
	if err := json.Unmarshal([]byte(b.String()), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Unprobed) != 1 || got.Unprobed[0] != (unprobedNode{Node: "c", Reason: lost.Reason}) {
		t.Errorf("unprobed %+v, want node c with its reason", got.Unprobed)
	}
}

// TestEnvironmentDefaults: DROVER_FILE and DROVER_ADDR stand in for -f
// and --addr; a flag given wins.
func TestEnvironmentDefaults(t *testing.T) {
	t.Setenv(envFile, "../../examples/demo/cluster.yaml")
	if code, out, errOut := runDrover(t, "validate"); code != 0 || !strings.Contains(out, "demo/cluster.yaml: valid") {
		t.Errorf("validate with DROVER_FILE: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runDrover(t, "render", "--node", "n1"); code != 0 || !strings.Contains(out, "zoo.cfg") {
		t.Errorf("render with DROVER_FILE: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := runDrover(t, "validate", "-f", "../../examples/dcos/cluster.yaml"); code != 0 || strings.Contains(out, "demo") {
		t.Errorf("-f given: exit %d, validated the environment's file too:\n%s", code, out)
	}
	addr, tokens := fakeDaemonTokens(t)
	t.Setenv(envAddr, addr)
	t.Setenv(envToken, "token-from-the-env")
	if code, out, errOut := runDrover(t, "status"); code != 0 || !strings.Contains(out, "cluster t, generation 3") {
		t.Errorf("status with DROVER_ADDR: exit %d\n%s%s", code, out, errOut)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("token-from-the-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runDrover(t, "status", "--token-file", tokenFile); code != 0 {
		t.Errorf("status --token-file: exit %d, %s", code, errOut)
	}
	if got := strings.Join(*tokens, ","); got != "token-from-the-env,token-from-the-file" {
		t.Errorf("tokens sent: %q, want DROVER_TOKEN's, then --token-file's", got)
	}
}

func TestVersionFlag(t *testing.T) {
	code, out, _ := runDrover(t, "--version")
	_, want, _ := runDrover(t, "version")
	if code != 0 || out != want || !strings.HasPrefix(out, "drover ") {
		t.Errorf("--version: exit %d, %q; version says %q", code, out, want)
	}
}

func TestColor(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tc := range []struct {
		terminal bool
		env      func(string) string
		want     bool
	}{
		{true, env("TERM", "xterm"), true},
		{false, env("TERM", "xterm"), false},
		{true, env("TERM", "xterm", "NO_COLOR", "1"), false},
		{true, env("TERM", "dumb"), false},
	} {
		if got := colorAllowed(tc.terminal, tc.env); got != tc.want {
			t.Errorf("terminal %v: colour %v, want %v", tc.terminal, got, tc.want)
		}
	}
	got := colorizePlan("node a\n  + install x 1.0\n  ~ upgrade y 1 -> 2\n\nPlan: 1 to install.\n")
	want := "node a\n" + ansiGreen + "  + install x 1.0" + ansiReset + "\n" + ansiYellow + "  ~ upgrade y 1 -> 2" + ansiReset + "\n\nPlan: 1 to install.\n"
	if got != want {
		t.Errorf("colorizePlan:\n%q\nwant\n%q", got, want)
	}
	// A buffer is not a terminal: the commands' output in tests is plain.
	var b strings.Builder
	if useColor(&b) {
		t.Error("colour for a strings.Builder")
	}
}
