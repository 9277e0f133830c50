package manifests

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	yamlv2 "go.yaml.in/yaml/v2"
	"sigs.k8s.io/yaml"
)

// decodeBySigs is how every manifest was decoded before decodeDoc: the
// reference decodeDoc must agree with.
func decodeBySigs(t testing.TB, data []byte, doc any, into any) error {
	t.Helper()
	c, _ := into.(*Cluster)
	var lists []commandList
	if c != nil {
		if lists = takeCommandLists(doc); len(lists) > 0 {
			var err error
			if data, err = yamlv2.Marshal(doc); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		return err
	}
	for _, l := range lists {
		l.put(c)
	}
	return nil
}

// decodeBoth decodes data with decodeDoc and with sigs.k8s.io/yaml. fast
// is false when the document is not decodeDoc's to decode (a problem
// inspect reports, a repeated key) or decodeDoc declined it.
func decodeBoth(t testing.TB, data []byte, typ reflect.Type) (fast bool, got, want any, refErr error) {
	t.Helper()
	docA, strict, err := readShape(data)
	if err != nil || strict != nil || len(inspect(docA, reflect.PointerTo(typ))) > 0 {
		return false, nil, nil, nil
	}
	docB, _, _ := readShape(data) // takeCommandLists changes the document
	got = reflect.New(typ).Interface()
	if c, ok := got.(*Cluster); ok {
		lists := takeCommandLists(docA)
		if !decodeDoc(docA, got) {
			return false, nil, nil, nil
		}
		for _, l := range lists {
			l.put(c)
		}
	} else if !decodeDoc(docA, got) {
		return false, nil, nil, nil
	}
	want = reflect.New(typ).Interface()
	return true, got, want, decodeBySigs(t, data, docB, want)
}

func TestDecodeDocMatchesSigsYAML(t *testing.T) {
	cases := map[string]string{
		"base": baseManifest,
		"numbers as text": `
apiVersion: drover/v1
kind: Cluster
metadata: {name: c, labels: {1: one, tier: 3}}
spec:
  probeInterval: 30
  ssh: {port: 2222, concurrency: 8, connectTimeout: 5s}
  nodes:
    - {name: a, address: 127.0.0.1, labels: {rack: 7}, roles: [db]}
  components:
    - name: x
      version: 3
      files: [{path: x.conf, template: "v={{ .Component.Version }}", mode: "0600"}]
      service: {exec: [/bin/x, -port, 8080, --flag], reload: /bin/true}
  rollout: {maxUnavailable: 10%}
`,
		"nulls and empties": `
apiVersion: drover/v1
kind: Cluster
metadata: {name: c, labels: {}}
spec:
  ssh: {bastion: null, identityFiles: [], roles: {db: null, web: {jump: []}}}
  nodes:
    - {name: a, address: 127.0.0.1, labels: null, roles: []}
  components: []
  rollout: {maxUnavailable: null}
`,
		"promoted fields and anchors": `
apiVersion: drover/v1
kind: Cluster
metadata: {name: c}
spec:
  ssh:
    roles: {db: &acc {knownHostsFile: /k, bastion: {address: b, port: 22}}}
  nodes:
    - {name: a, address: 127.0.0.1, knownHostsFile: /kh, identityFiles: [/id], jump: [{address: j1}, {address: j2, user: u}]}
    - {name: b, address: 127.0.0.2, user: u, <<: *acc}
  components:
    - {name: x, version: "1.10", roles: [db], service: {exec: /bin/x}}
  rollout: {maxUnavailable: 2}
`,
		"bad scalars kept for validate": `
apiVersion: drover/v1
kind: Cluster
metadata: {name: c}
spec:
  probeInterval: soon
  nodes: [{name: a, address: 127.0.0.1}]
  components: [{name: x, version: "1"}]
  rollout: {maxUnavailable: 2.5}
`,
	}
	paths, _ := filepath.Glob("../examples/*/*.yaml")
	more, _ := filepath.Glob("testdata/*/*.yaml")
	for _, p := range append(paths, more...) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		cases[p] = string(data)
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			typ := reflect.TypeFor[Cluster]()
			if strings.HasSuffix(name, "hosts.yaml") {
				typ = reflect.TypeFor[Inventory]()
			}
			fast, got, want, err := decodeBoth(t, []byte(text), typ)
			if !fast {
				t.Fatal("decodeDoc did not decode it: every case here is one it must")
			}
			if err != nil {
				t.Fatalf("sigs.k8s.io/yaml refused what decodeDoc decoded: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decodeDoc and sigs.k8s.io/yaml disagree\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// A number in a field promoted from an embedded struct is one place the
// JSON conversion does not make text of a number: decodeDoc leaves it to
// sigs.k8s.io/yaml, whose error Parse returns.
func TestDecodeDocDeclinesWhatSigsRefuses(t *testing.T) {
	text := strings.Replace(baseManifest, "address: 10.0.0.1,", "address: 10.0.0.1, knownHostsFile: 5,", 1)
	if text == baseManifest {
		t.Fatal("the base manifest changed: this test no longer edits a node")
	}
	if fast, _, _, _ := decodeBoth(t, []byte(text), reflect.TypeFor[Cluster]()); fast {
		t.Fatal("decodeDoc decoded a number in a promoted field")
	}
	if _, err := Parse([]byte(text)); err == nil || !strings.Contains(err.Error(), "knownHostsFile") {
		t.Fatalf("Parse: %v, want sigs.k8s.io/yaml's error naming knownHostsFile", err)
	}
}

// A repeated key is refused as strict decoding always refused it.
func TestParseRefusesRepeatedKeys(t *testing.T) {
	_, err := Parse([]byte("apiVersion: drover/v1\nkind: Cluster\nkind: Cluster\n"))
	if err == nil || !strings.Contains(err.Error(), `"kind" already set`) {
		t.Fatalf("Parse: %v, want the repeated key named", err)
	}
}

// FuzzDecodeDoc: whatever decodeDoc decodes, sigs.k8s.io/yaml decodes
// to the same value.
//
//	go test -fuzz FuzzDecodeDoc -fuzztime 60s ./manifests
func FuzzDecodeDoc(f *testing.F) {
	seeds, _ := filepath.Glob("../examples/*/*.yaml")
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(baseManifest))
	f.Add([]byte("spec: {rollout: {maxUnavailable: {a: 1}}, probeInterval: [30]}\n"))
	f.Add([]byte("metadata: {labels: {1: a, \"1\": b}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, got, want, err := decodeBoth(t, data, reflect.TypeFor[Cluster]())
		if !fast {
			return
		}
		if err != nil {
			t.Fatalf("sigs.k8s.io/yaml refused what decodeDoc decoded: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("disagree\n got %+v\nwant %+v", got, want)
		}
	})
}
