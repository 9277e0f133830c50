package wizard

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/drover-project/drover/manifests"
)

func TestReviewBuildsAManifestThatValidates(t *testing.T) {
	f := newFixture(t, nil)
	var r Review
	if code := f.post(t, "/api/v1/wizard/review", ReviewRequest{Setup: ptr(threeNodeSetup())}, &r); code != 200 {
		t.Fatalf("review: %d", code)
	}
	t.Logf("manifest:\n%s", r.Manifest)
	if !r.Valid {
		t.Fatalf("not valid: %+v", r.Problems)
	}
	for _, p := range r.Problems {
		if p.Severity == "error" {
			t.Errorf("error problem on a valid manifest: %+v", p)
		}
	}
	// Re-parse what the page would write, as the daemon will.
	l, err := manifests.LoadBytes(f.manifestPath, []byte(r.Manifest))
	if err != nil {
		t.Fatalf("the reviewed manifest does not load: %v", err)
	}
	c := l.Cluster
	if got := c.Spec.SSH.KnownHostsFile; got != f.knownHosts {
		t.Errorf("knownHostsFile %q, want the wizard's %q", got, f.knownHosts)
	}
	zk, ok := c.ComponentByName("zookeeper")
	if !ok || !zk.Quorum || zk.Artifact == nil || len(zk.Files) != 2 {
		t.Fatalf("zookeeper component: %+v", zk)
	}
	if zk.Artifact.SHA256 != sha256Hex("zookeeper bytes") {
		t.Errorf("zookeeper sha256 %s is not the file's", zk.Artifact.SHA256)
	}
	m2, _ := c.NodeByName("m2")
	files, err := c.Render(m2, zk)
	if err != nil {
		t.Fatal(err)
	}
	zoo, myid := string(files[0].Content), string(files[1].Content)
	for _, want := range []string{"server.1=127.0.2.1:2888:3888", "server.2=127.0.2.2:2888:3888", "clientPortAddress=127.0.2.2"} {
		if !strings.Contains(zoo, want) {
			t.Errorf("zoo.cfg for m2 lacks %q:\n%s", want, zoo)
		}
	}
	if strings.Contains(zoo, "127.0.2.3") {
		t.Errorf("zoo.cfg lists the agent:\n%s", zoo)
	}
	if strings.TrimSpace(myid) != "2" {
		t.Errorf("myid for m2 = %q, want 2", myid)
	}
	if got := c.Spec.Rollout.RoleOrder; strings.Join(got, ",") != "master,agent" {
		t.Errorf("roleOrder %v", got)
	}
	if !strings.Contains(r.Plan, "unknown") || r.PlanError != "" {
		t.Errorf("plan against unreachable nodes should say unknown: %q (error %q)", r.Plan, r.PlanError)
	}
	if r.BaseHash != "" || r.ManifestExists {
		t.Errorf("no manifest yet, but review says %q exists=%v", r.BaseHash, r.ManifestExists)
	}
}

func TestReviewReportsProblemsWithFieldPaths(t *testing.T) {
	f := newFixture(t, nil)
	s := threeNodeSetup()
	s.Cluster = "Lab!"
	s.Nodes[1].Address = "not an address"
	s.Nodes[2].Name = "m1"
	s.Components[0].Roles = []string{"master", "agent"} // the zookeeper template wants one role
	s.Components[1].Artifact = "missing-1.0.tar.gz"
	s.Components[1].Health.Port = 70000
	var r Review
	if code := f.post(t, "/api/v1/wizard/review", ReviewRequest{Setup: &s}, &r); code != 200 {
		t.Fatalf("review: %d", code)
	}
	if r.Valid {
		t.Fatal("an invalid setup reviewed as valid")
	}
	paths := map[string]bool{}
	for _, p := range r.Problems {
		paths[p.Path] = true
	}
	for _, want := range []string{
		"metadata.name", "spec.nodes[1].address", "spec.nodes[2].name",
		"spec.components[0].roles", "spec.components[1].artifact", "spec.components[1].health.http.port",
	} {
		if !paths[want] {
			t.Errorf("no problem at %s; got %+v", want, r.Problems)
		}
	}
	if r.Plan != "" {
		t.Errorf("an invalid manifest was planned: %q", r.Plan)
	}
}

func TestReviewOfAnEditedManifest(t *testing.T) {
	f := newFixture(t, nil)
	var r Review
	f.post(t, "/api/v1/wizard/review", ReviewRequest{Setup: ptr(threeNodeSetup())}, &r)
	edited := strings.Replace(r.Manifest, "probeInterval: 10s", "probeInterval: 10", 1)
	if edited == r.Manifest {
		t.Fatal("test manifest lacks probeInterval: 10s")
	}
	var r2 Review
	f.post(t, "/api/v1/wizard/review", ReviewRequest{Manifest: edited}, &r2)
	if r2.Valid || len(r2.Problems) == 0 || r2.Problems[0].Path != "spec.probeInterval" {
		t.Fatalf("edited manifest: valid=%v problems %+v", r2.Valid, r2.Problems)
	}
}

func TestParseArtifactName(t *testing.T) {
	for _, tc := range []struct{ file, name, version string }{
		{"zookeeper-3.8.0.tar.gz", "zookeeper", "3.8.0"},
		{"node_exporter-1.9.1.tar.gz", "node-exporter", "1.9.1"},
		{"marathon-1.11.0-rc1.tgz", "marathon", "1.11.0-rc1"},
		{"dcos-net-2-1.tar.gz", "dcos-net", "2-1"},
		{"Foo_Bar_2.0.tar.gz", "foo-bar", "2.0"},
		{"README.tar.gz", "", ""},
		{"-1.0.tar.gz", "", ""},
		{"zookeeper-3.8.0.zip", "", ""},
		// The manifest refuses ~ in a version (manifests.IsVersion).
		{"app-1.0~rc1.tar.gz", "", ""},
	} {
		name, version, ok := parseArtifactName(tc.file)
		if name != tc.name || version != tc.version || ok != (tc.name != "") {
			t.Errorf("%s: got %q %q %v, want %q %q", tc.file, name, version, ok, tc.name, tc.version)
		}
	}
}

func TestArtifactsEndpoint(t *testing.T) {
	f := newFixture(t, nil)
	var resp ArtifactsResponse
	r, err := f.srv.Client().Get(f.srv.URL + "/api/v1/wizard/artifacts")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if err := decode(r.Body, &resp); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range resp.Artifacts {
		names = append(names, a.Name+"@"+a.Version+":"+a.Template)
		if a.SHA256 != sha256Hex(map[string]string{
			"zookeeper-3.8.0.tar.gz": "zookeeper bytes", "node_exporter-1.8.2.tar.gz": "node exporter 1.8.2",
			"node_exporter-1.9.1.tar.gz": "node exporter 1.9.1"}[a.File]) {
			t.Errorf("%s: sha256 %s is not the file's", a.File, a.SHA256)
		}
	}
	if got := strings.Join(names, " "); got != "node-exporter@1.8.2:node-exporter node-exporter@1.9.1:node-exporter zookeeper@3.8.0:zookeeper" {
		t.Errorf("artifacts: %s", got)
	}
	if len(resp.Skipped) != 1 || resp.Skipped[0].File != "README.tar.gz" {
		t.Errorf("skipped: %+v", resp.Skipped)
	}
	if resp.Defaults.ManifestPath != f.manifestPath || resp.Defaults.ManifestExists {
		t.Errorf("defaults: %+v", resp.Defaults)
	}
	if len(resp.Defaults.SSHConfigHosts) != 0 {
		t.Errorf("an empty ssh_config offers hosts: %v", resp.Defaults.SSHConfigHosts)
	}
}

// TestArtifactsOffersSSHConfigHosts: the node step lists the concrete
// Host aliases of the ssh_config (patterns left out).
func TestArtifactsOffersSSHConfigHosts(t *testing.T) {
	f := newFixture(t, nil)
	os.WriteFile(f.w.opts.SSHConfigFile, []byte("Host web-1 web-2\n  User ops\nHost *.prod !bad\n  Port 2\nHost db\n"), 0o600)
	var resp ArtifactsResponse
	r, err := f.srv.Client().Get(f.srv.URL + "/api/v1/wizard/artifacts")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if err := decode(r.Body, &resp); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(resp.Defaults.SSHConfigHosts, " "); got != "web-1 web-2 db" {
		t.Errorf("ssh_config hosts %q, want web-1 web-2 db", got)
	}
}

func ptr[T any](v T) *T { return &v }

// TestOrderedYAMLMeansTheSame: the wizard's field-ordered YAML parses
// back to exactly what sigs.k8s.io/yaml's sorted YAML does.
func TestOrderedYAMLMeansTheSame(t *testing.T) {
	f := newFixture(t, nil)
	s := threeNodeSetup()
	s.Nodes[2].Port = 2222
	c, ps := f.w.build(s)
	if len(ps) != 0 {
		t.Fatal(ps)
	}
	c.Spec.Rollout.MaxUnavailable = manifests.NewPercent(25)
	c.Metadata.Labels = map[string]string{"env": "lab", "a": "1.10"}
	ordered, err := orderedYAML(c)
	if err != nil {
		t.Fatal(err)
	}
	sorted, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	a, err := manifests.Parse(ordered)
	if err != nil {
		t.Fatalf("%v\n%s", err, ordered)
	}
	b, err := manifests.Parse(sorted)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("ordered and sorted YAML differ:\n%s\n---\n%s", ordered, sorted)
	}
	if ps := a.Validate(); ps.HasErrors() {
		t.Errorf("ordered YAML: %v", ps)
	}
	// Schema order: a component starts with its name, the spec with installRoot.
	text := string(ordered)
	if !strings.Contains(text, "- name: zookeeper") || strings.Index(text, "installRoot:") > strings.Index(text, "components:") {
		t.Errorf("not in schema order:\n%s", text)
	}
	if !strings.Contains(text, `a: "1.10"`) || !strings.Contains(text, "port: 2222") || !strings.Contains(text, "maxUnavailable: 25%") {
		t.Errorf("scalars not kept as they were:\n%s", text)
	}
}
