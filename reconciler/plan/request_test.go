package plan

import (
	"fmt"
	"testing"

	"github.com/drover-project/drover/probes"
)

// TestRequestFor: a node is asked for each present component placed on
// it, with its version, the absolute paths of its rendered files, whether
// it has a service and its checks; an absent component is not asked for
// (a probe finds it by its receipt).
func TestRequestFor(t *testing.T) {
	d, err := compileYAML(t, "/srv/c.yaml", diffManifest)
	if err != nil {
		t.Fatal(err)
	}
	m1, a1 := RequestFor(d, d.Node("m1")), RequestFor(d, d.Node("a1"))
	if m1.InstallRoot != d.InstallRoot || d.InstallRoot == "" || len(m1.Components) != 2 || len(a1.Components) != 2 {
		t.Fatalf("m1 = %+v\na1 = %+v", m1, a1)
	}
	zk := m1.Components[0]
	wantFiles := []string{d.InstallRoot + "/packages/zk/3.8.4/conf/zoo.cfg", d.InstallRoot + "/packages/zk/3.8.4/data/myid"}
	if zk.Name != "zk" || zk.Version != "3.8.4" || !zk.Service || zk.Health == nil || zk.Health.TCP == nil || fmt.Sprint(zk.Files) != fmt.Sprint(wantFiles) {
		t.Errorf("zk want = %+v", zk)
	}
	if conf := m1.Components[1]; conf.Name != "conf" || conf.Service || fmt.Sprint(conf.Files) != "[/etc/conf.d/x.conf]" || conf.Health == nil || conf.Health.Exec == nil {
		t.Errorf("conf want = %+v", conf)
	}
	for _, req := range []probes.Request{m1, a1} {
		for _, w := range req.Components {
			if w.Name == "gone" {
				t.Errorf("absent component asked for: %+v", req)
			}
		}
		if _, err := probes.Script(req); err != nil {
			t.Errorf("request makes no script: %v", err)
		}
	}
}
