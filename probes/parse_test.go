package probes

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the parser's output")

// TestParseGolden parses every saved probe output in testdata and compares
// the result (or the error) with its .golden file.
func TestParseGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".txt")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got := renderParse(raw)
			golden := strings.TrimSuffix(in, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("parse %s:\n--- got\n%s\n--- want\n%s", in, got, want)
			}
		})
	}
}

func renderParse(raw []byte) string {
	obs, err := Parse(raw)
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	b, err := json.MarshalIndent(obs, "", "  ")
	if err != nil {
		return "marshal: " + err.Error() + "\n"
	}
	return string(b) + "\n"
}

// TestParseConverged checks the facts the reconciler relies on, so the
// golden files are not the only thing standing between a parser change
// and a wrong plan.
func TestParseConverged(t *testing.T) {
	raw, err := os.ReadFile("testdata/converged.txt")
	if err != nil {
		t.Fatal(err)
	}
	obs, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !obs.Known || obs.OS.ID != "debian" || obs.OS.VersionID != "12" || obs.OS.Arch != "x86_64" || obs.OS.Hostname != "m1" || obs.OS.FreeBytes != 83693809664 {
		t.Errorf("os = %+v known=%v", obs.OS, obs.Known)
	}
	zk := obs.Components["zookeeper"]
	if zk == nil || zk.Receipt == nil || zk.Receipt.Version != "3.8.0" || zk.Active != "3.8.0" || !zk.Packages["3.8.0"] || !zk.Packages["3.7.1"] {
		t.Fatalf("zookeeper = %+v", zk)
	}
	if len(zk.Files) != 2 || zk.Files[0].Mode != 0o644 || zk.Files[1].Path != "/opt/drover/packages/zookeeper/3.8.0/data/myid" {
		t.Errorf("zookeeper files = %+v", zk.Files)
	}
	if !zk.Unit.Exists || zk.Unit.ActiveState != "active" || zk.Unit.SubState != "running" || !zk.Unit.Enabled {
		t.Errorf("zookeeper unit = %+v", zk.Unit)
	}
	tools := obs.Components["tools"]
	if tools == nil || !tools.Health.Checked || !tools.Health.OK || tools.Files[0].Mode != 0o600 {
		t.Errorf("tools = %+v", tools)
	}
	if len(obs.Components) != 3 {
		t.Errorf("components = %d, want 3", len(obs.Components))
	}
}

func TestParseTruncatedIsError(t *testing.T) {
	for _, name := range []string{"truncated-block", "truncated-receipt-aligned", "no-done"} {
		raw, err := os.ReadFile("testdata/" + name + ".txt")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(raw); !errors.Is(err, ErrTruncated) {
			t.Errorf("%s: err = %v, want ErrTruncated", name, err)
		}
	}
}

// TestParseMalformed: every broken line is an error naming its line.
func TestParseMalformed(t *testing.T) {
	const head = "drover-probe 2\nos id=debian version_id=12 arch=x86_64 hostname=m1 free=1\n"
	const sum = "8e3d9644b6610d1c0dcc56a1cd752629f41b29f29b95a0f7e0db4f7f5804a0c0"
	block := func(lines ...string) string {
		return head + "component zk\nreceipt -\nactive -\n" + strings.Join(lines, "\n") + "\nend\ndone\n"
	}
	cases := []struct {
		name, out, want string
	}{
		{"empty", "", "probe printed nothing"},
		{"header only", "drover-probe 2\n", "ends before its done line"},
		{"future version", "drover-probe 3\n", `line 1: unsupported probe format version (want 2): "drover-probe 3"`},
		{"os missing field", "drover-probe 2\nos id=debian version_id=12 arch=x86_64 hostname=m1\ndone\n", "line 2: want 5 fields"},
		{"os extra field", "drover-probe 2\nos id=debian version_id=12 arch=x86_64 hostname=m1 free=1 x=1\ndone\n", "line 2: want field free="},
		{"os bad free", "drover-probe 2\nos id=debian version_id=12 arch=x86_64 hostname=m1 free=lots\ndone\n", "line 2: bad free bytes"},
		{"os twice", head + "os id=debian version_id=12 arch=x86_64 hostname=m1 free=1\ndone\n", "line 3: os line out of place"},
		{"done before os", "drover-probe 2\ndone\n", "line 2: done out of place"},
		{"component before os", "drover-probe 2\ncomponent zk\n", "line 2: component before os line"},
		{"bad name", head + "component Zk\n", "line 3: bad component name"},
		{"duplicate component", head + "component zk\nreceipt -\nactive -\nend\ncomponent zk\n", "line 7: component listed twice"},
		{"nested", head + "component zk\nreceipt -\nactive -\ncomponent b\n", "line 6: component inside another"},
		{"active before receipt", head + "component zk\nactive -\n", "line 4: active line out of order"},
		{"receipt twice", head + "component zk\nreceipt -\nreceipt -\n", "line 5: receipt line out of order"},
		{"end too early", head + "component zk\nreceipt -\nend\n", "line 5: block ends before"},
		{"file before package", block("file missing /a", "package 1 complete"), "line 7: package line out of order"},
		{"unit twice", block("unit exists=0 hash=- active=inactive sub=dead enabled=0", "unit exists=0 hash=- active=inactive sub=dead enabled=0"), "line 7: unit line out of order"},
		{"unknown line", block("frobnicate 1"), "line 6: unknown line"},
		{"line outside block", head + "receipt -\n", "line 3: unknown line outside a component block"},
		{"bad package state", block("package 1.0 half"), "line 6: want: package VERSION complete|incomplete"},
		{"package twice", block("package 1.0 complete", "package 1.0 incomplete"), "line 7: package listed twice"},
		{"bad receipt state", head + "component zk\nreceipt %%%\n", "line 4: want: receipt = LINE, - or ! (unreadable)"},
		{"receipt text after state", head + "component zk\nreceipt -\nreceipt = {}\n", "line 5: receipt line out of order"},
		{"receipt state after text", head + "component zk\nreceipt = {}\nreceipt !\n", "line 5: receipt line out of order"},
		{"receipt after active", head + "component zk\nreceipt = {}\nactive -\nreceipt = {}\n", "line 6: receipt line out of order"},
		{"bad file mode", block("file 9z9 " + sum + " /a"), "line 6: bad file mode"},
		{"bad file sum", block("file 644 abc /a"), "line 6: bad file sha256"},
		{"relative file", block("file 644 " + sum + " a"), "line 6: want: file MODE SHA256 PATH"},
		{"file error", block("file error /etc/x"), "line 6: could not read /etc/x on the node"},
		{"unit unreadable", block("unit exists=1 hash=- active=active sub=running enabled=1"), "line 6: unit file is there but could not be read"},
		{"unit bad enabled", block("unit exists=0 hash=- active=inactive sub=dead enabled=yes"), "line 6: bad unit state"},
		{"unit missing field", block("unit exists=0 hash=- active=inactive sub=dead"), "line 6: want 5 fields"},
		{"health ok nonzero", block("health exec ok 1"), "line 6: want: health exec ok 0|fail CODE"},
		{"health fail zero", block("health exec fail 0"), "line 6: want: health exec ok 0|fail CODE"},
		{"leader ok nonzero", block("leader exec ok 3"), "line 6: want: leader exec ok 0|fail CODE"},
		{"leader before health", block("leader exec ok 0", "health exec ok 0"), "line 7: health line out of order"},
		{"leader twice", block("leader exec ok 0", "leader exec ok 0"), "line 7: leader line out of order"},
		{"health http", block("health http ok 0"), "line 6: unknown health kind"},
		{"trailing space", head + "done \n", "line 3: done out of place"},
		{"crlf", head + "done\r\n", `line 3: unknown line outside a component block: "done\r"`},
		{"after done", head + "done\nextra\n", "line 4: output after done"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.out))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestParseReceiptProblems(t *testing.T) {
	raw, err := os.ReadFile("testdata/oddities.txt")
	if err != nil {
		t.Fatal(err)
	}
	obs, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	zk, tools, stray := obs.Components["zookeeper"], obs.Components["tools"], obs.Components["stray"]
	if zk.Receipt != nil || !strings.Contains(zk.ReceiptError, "not valid JSON") || !zk.ActiveBroken {
		t.Errorf("zookeeper = %+v", zk)
	}
	if tools.Receipt != nil || tools.ReceiptError == "" {
		t.Errorf("tools = %+v", tools)
	}
	if stray == nil || stray.Receipt != nil || !strings.Contains(stray.ReceiptError, `for component "other"`) {
		t.Errorf("stray = %+v", stray)
	}
	if ne := obs.Components["node-exporter"]; ne.Active != "1.8.2" || len(ne.Packages) != 0 {
		t.Errorf("node-exporter (dangling active link) = %+v", ne)
	}
}

func BenchmarkParse(b *testing.B) {
	raw, err := os.ReadFile("testdata/converged.txt")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}
