package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/test/harness"
)

// Hostile input on real systemd nodes (issue 24, the node side): a
// symlinked artifact and a manifest file under .drover-files write
// nothing outside drover's paths, a rollback restores only what drover
// recorded, an install root that holds a foreign cache/ is refused, and
// service.environment stays out of the world-readable unit. Each case is
// checked on the node's own file system over SSH. One node, its own
// install root and names, cleaned before and after: the shared cluster's
// /opt/drover is not touched.

const (
	hostileRoot      = "/srv/hostile"
	hostileForeign   = "/srv/hostile-foreign"
	hostileElsewhere = "/etc/hostile-elsewhere" // stands for any system dir
	hostileOutside   = "/etc/hostile-app"       // the manifest's own file outside
	hostileSUID      = "/usr/local/bin/hostile-suid"
	hostileVictim    = "precious"
)

const hostileCleanup = `set -u
systemctl disable --now drover-hostile-env.service > /dev/null 2>&1 || true
rm -f /etc/systemd/system/drover-hostile*.service
systemctl daemon-reload
systemctl reset-failed drover-hostile-env.service > /dev/null 2>&1 || true
rm -rf ` + hostileRoot + " " + hostileForeign + " " + hostileElsewhere + " " + hostileOutside + " " + hostileSUID + `
`

// hostileReset is hostileCleanup, then the stand-in system dir with its victim.
const hostileReset = hostileCleanup + `mkdir -p ` + hostileElsewhere + `
echo ` + hostileVictim + " > " + hostileElsewhere + `/victim
`

// hostileEntry is one member of a test artifact: a file, or a symlink.
type hostileEntry struct {
	name, content, link string
	mode                int64
}

// hostileArtifact writes a tar.gz of entries and returns its path and sha256.
func hostileArtifact(t *testing.T, name string, entries ...hostileEntry) (string, string) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.content)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}
		if e.link != "" {
			hdr.Typeflag, hdr.Linkname, hdr.Size, hdr.Mode = tar.TypeSymlink, e.link, 0, 0o777
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.content)); err != nil && e.link == "" {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name+".tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return p, hex.EncodeToString(sum[:])
}

// checkScript is a health check that passes or fails.
func checkScript(ok bool) hostileEntry {
	code := 0
	if !ok {
		code = 1
	}
	return hostileEntry{name: "bin/check", mode: 0o755, content: fmt.Sprintf("#!/bin/sh\nexit %d\n", code)}
}

// hostileManifest is a one-node cluster at root with the given
// components (YAML list items at column 4) and a 5 s health gate that
// rolls back.
func (s *suite) hostileManifest(t *testing.T, n harness.Node, root, components string) string {
	t.Helper()
	m := fmt.Sprintf(`apiVersion: drover/v1
kind: Cluster
metadata:
  name: hostile
spec:
  installRoot: %s
%s  nodes:
    - {name: %s, address: %s, port: %d}
  components:
%s  rollout:
    healthTimeout: 5s
    onFailure: rollback
`, root, harness.Indent(s.c.SSHYAML(), 2), n.Name, n.Address, n.Port, components)
	p := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(p, []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// hostileComponent is a component without a service, unpacked from
// artifact, with a health check run from its version dir.
func hostileComponent(name, version, artifact, sha, files string) string {
	return fmt.Sprintf(`    - name: %s
      version: %q
      artifact: {path: %s, sha256: %q}
      files:
%s      health:
        exec: {command: ["%s/active/%s/bin/check"]}
        timeout: 5s
`, name, version, artifact, sha, files, hostileRoot, name)
}

// requireElsewhereUntouched fails unless the stand-in system dir holds
// only its victim file, unchanged, and no setuid file was made.
func (s *suite) requireElsewhereUntouched(t *testing.T, n harness.Node) {
	t.Helper()
	out := s.exec(t, n, "ls -A "+hostileElsewhere+"; cat "+hostileElsewhere+"/victim; ls -l "+hostileSUID+" 2>&1 || true")
	if want := "victim\n" + hostileVictim + "\n"; !strings.HasPrefix(out, want) || !strings.Contains(out, "No such file") {
		t.Errorf("%s: outside drover's paths after the apply:\n%s\nwant only %s/victim, unchanged, and no %s", n.Name, out, hostileElsewhere, hostileSUID)
	}
}

func TestHostileNode(t *testing.T) {
	s := setup(t)
	n := s.agents[len(s.agents)-1]
	s.exec(t, n, hostileReset)
	t.Cleanup(func() { s.exec(t, n, hostileCleanup) })

	// Symlinked artifacts: a manifest file, tar itself, and drover's own
	// completion mark are never written through a link out.
	for _, tc := range []struct {
		name    string
		entries []hostileEntry
		refused string // what the failed apply says; "" when it converges
	}{
		{"manifest file through a link", []hostileEntry{{name: "conf", link: hostileElsewhere}}, "symbolic link"},
		{"tar member through its own link", []hostileEntry{{name: "conf", link: hostileElsewhere}, {name: "conf/planted", mode: 0o644, content: "pwned\n"}}, "Not a directory"},
		{"completion mark is a link", []hostileEntry{{name: ".complete", link: hostileElsewhere + "/victim"}}, ""},
	} {
		t.Run("symlinked artifact/"+tc.name, func(t *testing.T) {
			s.exec(t, n, hostileReset)
			art, sha := hostileArtifact(t, "linked", append([]hostileEntry{checkScript(true)}, tc.entries...)...)
			m := s.hostileManifest(t, n, hostileRoot, hostileComponent("hostile", "1", art, sha,
				"        - {path: conf/app.conf, template: \"pwned\\n\"}\n"))
			if tc.refused == "" {
				m = s.hostileManifest(t, n, hostileRoot, hostileComponent("hostile", "1", art, sha,
					"        - {path: etc/app.conf, template: \"fine\\n\"}\n"))
			}
			r := s.run(t, m, "apply", "--yes")
			switch {
			case tc.refused == "" && r.Code != 0:
				t.Errorf("apply exited %d, want 0", r.Code)
			case tc.refused != "" && r.Code == 0:
				t.Errorf("apply exited 0, want a failure")
			case tc.refused != "" && !strings.Contains(r.Stdout+r.Stderr, tc.refused):
				t.Errorf("apply does not say %q", tc.refused)
			}
			s.requireElsewhereUntouched(t, n)
		})
	}

	t.Run("reserved .drover-files", func(t *testing.T) {
		art, sha := hostileArtifact(t, "plain", checkScript(true))
		m := s.hostileManifest(t, n, hostileRoot, hostileComponent("hostile", "1", art, sha,
			"        - {path: .drover-files"+hostileSUID+", mode: \"4755\", template: \"#!/bin/sh\\n\"}\n"))
		for _, cmd := range []string{"validate", "apply"} {
			args := []string{cmd}
			if cmd == "apply" {
				args = append(args, "--yes")
			}
			r := s.run(t, m, args...)
			if r.Code == 0 || !strings.Contains(r.Stdout+r.Stderr, "spec.components[0].files[0].path") {
				t.Errorf("%s of a file under .drover-files: exit %d without naming spec.components[0].files[0].path", cmd, r.Code)
			}
		}
		s.requireElsewhereUntouched(t, n)
	})

	t.Run("rollback restores only recorded files", func(t *testing.T) {
		s.exec(t, n, hostileReset)
		outside := "        - {path: " + hostileOutside + "/app.conf, template: \"version={{ .Component.Version }}\\n\"}\n"
		good, goodSHA := hostileArtifact(t, "good", checkScript(true))
		s.mustApply(t, s.hostileManifest(t, n, hostileRoot, hostileComponent("hostile", "1", good, goodSHA, outside)))
		// What a manifest path ".drover-files/<abs>" left in a version dir
		// before it was reserved: a rollback to 1 must not copy it out.
		s.exec(t, n, fmt.Sprintf("d=%s/packages/hostile/1/.drover-files; mkdir -p $d%s $d%s && printf '#!/bin/sh\\n' > $d%s && chmod 4755 $d%s && echo pwned > $d%s/victim",
			hostileRoot, filepath.Dir(hostileSUID), hostileElsewhere, hostileSUID, hostileSUID, hostileElsewhere))
		bad, badSHA := hostileArtifact(t, "bad", checkScript(false))
		r := s.run(t, s.hostileManifest(t, n, hostileRoot, hostileComponent("hostile", "2", bad, badSHA, outside)), "apply", "--yes")
		if r.Code == 0 {
			t.Fatalf("apply of a version that fails its health check exited 0")
		}
		if l := strings.TrimSpace(s.exec(t, n, "readlink "+hostileRoot+"/active/hostile")); l != "../packages/hostile/1" {
			t.Errorf("active -> %q after the rollback, want ../packages/hostile/1", l)
		}
		if got := s.exec(t, n, "cat "+hostileOutside+"/app.conf"); got != "version=1\n" {
			t.Errorf("the recorded file outside after the rollback: %q, want version=1", got)
		}
		s.requireElsewhereUntouched(t, n)
	})

	t.Run("foreign cache dir", func(t *testing.T) {
		s.exec(t, n, "mkdir -p "+hostileForeign+"/cache && echo mine > "+hostileForeign+"/cache/important.db")
		art, sha := hostileArtifact(t, "plain", checkScript(true))
		r := s.run(t, s.hostileManifest(t, n, hostileForeign, hostileComponent("hostile", "1", art, sha,
			"        - {path: conf/app.conf, template: \"x\\n\"}\n")), "apply", "--yes")
		if r.Code == 0 || !strings.Contains(r.Stdout+r.Stderr, "not drover's") {
			t.Errorf("apply into a root holding a foreign cache/: exit %d, want a failure saying the root is not drover's", r.Code)
		}
		if out := s.exec(t, n, "cd "+hostileForeign+" && find . | sort && cat cache/important.db"); out != ".\n./cache\n./cache/important.db\nmine\n" {
			t.Errorf("%s after the refused apply:\n%s", hostileForeign, out)
		}
	})

	t.Run("environment file", func(t *testing.T) {
		s.exec(t, n, hostileReset)
		const secret = `s3 "cr$et\ 100%`
		art, sha := hostileArtifact(t, "env", checkScript(true))
		m := s.hostileManifest(t, n, hostileRoot, fmt.Sprintf(`    - name: hostile-env
      version: "1"
      artifact: {path: %s, sha256: %q}
      service:
        exec: /bin/sleep infinity
        environment: {HOSTILE_SECRET: %q}
`, art, sha, secret))
		s.mustApply(t, m)
		if unit := s.exec(t, n, "cat /etc/systemd/system/drover-hostile-env.service; systemctl show -p Environment drover-hostile-env.service"); strings.Contains(unit, "cr$et") {
			t.Errorf("the unit shows the secret:\n%s", unit)
		}
		if mode := s.exec(t, n, "stat -c %a "+hostileRoot+"/active/hostile-env/.drover-env"); mode != "600\n" {
			t.Errorf("environment file mode %q, want 600", mode)
		}
		env := s.exec(t, n, `tr '\0' '\n' < /proc/$(systemctl show -p MainPID --value drover-hostile-env.service)/environ`)
		if !strings.Contains(env, "\nHOSTILE_SECRET="+secret+"\n") && !strings.HasPrefix(env, "HOSTILE_SECRET="+secret+"\n") {
			t.Errorf("the service's environment lacks HOSTILE_SECRET=%s:\n%s", secret, env)
		}
		s.mustPlanEmpty(t, m)

		// The same service as a drover before the environment file left
		// it: values inline in the unit, no file, the receipt's hashes of
		// those. Upgrading drover moves them without a restart.
		unitPath := "/etc/systemd/system/drover-hostile-env.service"
		unit := s.exec(t, n, "cat "+unitPath)
		fileLine := "EnvironmentFile=" + hostileRoot + "/active/hostile-env/.drover-env\n"
		if !strings.Contains(unit, fileLine) {
			t.Fatalf("unit without %q:\n%s", fileLine, unit)
		}
		inline := strings.Replace(unit, fileLine, `Environment="HOSTILE_SECRET=`+strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`).Replace(secret)+"\"\n", 1)
		var rc probes.Receipt
		if err := json.Unmarshal([]byte(s.exec(t, n, "cat "+hostileRoot+"/receipts/hostile-env.json")), &rc); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(inline))
		rc.UnitHash, rc.ConfigHash = hex.EncodeToString(sum[:]), manifests.ConfigHash(nil)
		rj, err := json.Marshal(rc)
		if err != nil {
			t.Fatal(err)
		}
		s.exec(t, n, fmt.Sprintf("printf '%%s' %s > %s && printf '%%s\\n' %s > %s/receipts/hostile-env.json && rm %s/active/hostile-env/.drover-env && systemctl daemon-reload && systemctl restart drover-hostile-env.service",
			shQuote(inline), unitPath, shQuote(string(rj)), hostileRoot, hostileRoot))
		_, _, pid := s.unitState(t, n, "hostile-env")
		r := s.mustApply(t, m)
		if !strings.Contains(r.Stdout, "reconfigure hostile-env") {
			t.Errorf("apply did not reconfigure hostile-env")
		}
		if _, _, after := s.unitState(t, n, "hostile-env"); after != pid || pid == "0" {
			t.Errorf("moving the environment into its file restarted the service: main pid %s, then %s", pid, after)
		}
		if got := s.exec(t, n, "cat "+unitPath); got != unit {
			t.Errorf("unit after the move:\n%s\nwant:\n%s", got, unit)
		}
		s.exec(t, n, "test -f "+hostileRoot+"/active/hostile-env/.drover-env")
		s.mustPlanEmpty(t, m)
	})
}

// shQuote quotes s for a POSIX shell.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
