package main

import (
	"os"
	"strings"
	"testing"
)

const dcos = "../../examples/dcos/cluster.yaml"

// goldenNode cuts one node's section out of the manifests package's
// render golden file, which the CLI output must equal.
func goldenNode(t *testing.T, example, node string) string {
	t.Helper()
	data, err := os.ReadFile("../../manifests/testdata/render/" + example + ".golden")
	if err != nil {
		t.Fatal(err)
	}
	sections := strings.Split(string(data), "######## node ")
	for _, s := range sections {
		if strings.HasPrefix(s, node+" ") {
			_, body, _ := strings.Cut(s, "\n")
			return body
		}
	}
	t.Fatalf("no node %s in golden", node)
	return ""
}

func TestRenderNode(t *testing.T) {
	for _, node := range []string{"m1", "m3", "a1", "p1"} {
		code, out, errs := runDrover(t, "render", "-f", dcos, "--node", node)
		if code != 0 || errs != "" {
			t.Fatalf("%s: exit %d, stderr %s", node, code, errs)
		}
		if want := goldenNode(t, "dcos", node); out != want {
			t.Errorf("%s: got:\n%s\nwant:\n%s", node, out, want)
		}
	}
}

func TestRenderComponent(t *testing.T) {
	code, out, _ := runDrover(t, "render", "-f", dcos, "--node", "m2", "--component", "zookeeper")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var headers []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "==> ") {
			path, rest, _ := strings.Cut(strings.TrimPrefix(line, "==> "), " ")
			mode := "0644"
			if strings.HasSuffix(path, "/bin/zk-mode") {
				mode = "0755"
			}
			if !strings.HasPrefix(rest, "(component zookeeper, mode "+mode+", sha256 ") {
				t.Errorf("header %q", line)
			}
			headers = append(headers, strings.TrimPrefix(path, "/opt/drover/packages/zookeeper/3.8.0/"))
		}
	}
	if strings.Join(headers, " ") != "conf/zoo.cfg conf/myid bin/zk-mode" || !strings.Contains(out, "clientPortAddress=10.0.0.12\n") {
		t.Fatalf("files %v, output:\n%s", headers, out)
	}
	// a component with no files prints nothing, successfully
	if code, out, errs := runDrover(t, "render", "-f", dcos, "--node", "m2", "--component", "node-exporter"); code != 0 || out != "" || errs != "" {
		t.Fatalf("node-exporter: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestRenderErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--node", "m9"}, `drover: no node named "m9" in the manifest`},
		{[]string{"--node", "m1", "--component", "zk"}, `drover: no component named "zk" in the manifest`},
		{[]string{"--node", "a1", "--component", "zookeeper"}, "drover: component zookeeper does not run on node a1"},
		{nil, `required flag(s) "node" not set`},
	}
	for _, tc := range cases {
		code, out, errs := runDrover(t, append([]string{"render", "-f", dcos}, tc.args...)...)
		if code != 1 || out != "" || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", tc.args, code, out, errs, tc.want)
		}
	}
	broken := brokenCopy(t, `sha256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"`, `sha256: "0123"`)
	code, _, errs := runDrover(t, "render", "-f", broken, "--node", "m1")
	if code != 1 || errs != broken+": spec.components[0].artifact.sha256: must be 64 hex characters\n" {
		t.Fatalf("broken: exit %d, stderr %q", code, errs)
	}
}
