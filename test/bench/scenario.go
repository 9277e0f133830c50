package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/drover-project/drover/test/harness"
)

// installRoot is where every tool installs on a node. On a light node it
// is the node's private directory (harness.Node.Root on the host).
const installRoot = harness.DefaultInstallRoot

// connectTimeout bounds each TCP connect and SSH handshake of every tool.
// A cold round of 500 nodes at concurrency 500 starts 500 handshakes at
// once, and each costs its sshd ~0.3 s of CPU (fork, re-exec, key
// exchange) on the same 2 CPUs: the last ones finish over a minute
// later, and drover's timeout covers the whole handshake, OpenSSH's
// ConnectTimeout only the connect and the banner. A timeout here would
// fail a run instead of measuring it.
const connectTimeout = 3 * time.Minute

// masters is how many nodes carry the "master" role: peers.conf lists
// them, like a ZooKeeper ensemble in zoo.cfg.
const masters = 3

// component is one component of a bench manifest. Every component has
// the same two rendered files, in its version dir: conf/app.conf (this
// node's address) and conf/peers.conf (the masters' addresses).
type component struct {
	Name    string
	Version string
	Art     artifact
	// Health adds an exec check that runs the component's bin/<name>.
	Health bool
}

// Templates as drover renders them; ansibleTemplates renders the same bytes.
const (
	appConfTemplate   = "address={{ .Node.Address }}\nversion={{ .Component.Version }}\n"
	peersConfTemplate = `{{ range $i, $m := nodesWithRole "master" }}server.{{ $i }}={{ $m.Address }}:2888:3888{{ "\n" }}{{ end }}`
)

// appConf and peersConf are the expected file contents on a node.
func appConf(address, version string) string {
	return fmt.Sprintf("address=%s\nversion=%s\n", address, version)
}

func peersConf(nodes []harness.Node) string {
	var b strings.Builder
	for i, n := range nodes[:min(masters, len(nodes))] {
		fmt.Fprintf(&b, "server.%d=%s:2888:3888\n", i, n.Address)
	}
	return b.String()
}

// versionDir is a component's version dir as the node sees it.
func versionDir(c component) string {
	return path.Join(installRoot, "packages", c.Name, c.Version)
}

// filePaths are the absolute paths, on the node, of a component's files.
func filePaths(c component) []string {
	return []string{path.Join(versionDir(c), "conf/app.conf"), path.Join(versionDir(c), "conf/peers.conf")}
}

// manifestSpec is what varies between the bench manifests.
type manifestSpec struct {
	Nodes      []harness.Node
	Components []component
	// Concurrency is spec.ssh.concurrency; 0 leaves the default (64).
	Concurrency   int
	ProbeInterval time.Duration
}

// roles gives the first nodes the master role and the rest agent.
func roles(i int) string {
	if i < masters {
		return "master"
	}
	return "agent"
}

// writeManifest writes a drover manifest for nodes of cluster c. Template
// texts are written as JSON strings (valid YAML) so their bytes are exact.
// Every rollout is all at once, as Ansible and pssh do by default: the
// component has no service, so nothing becomes unavailable.
func writeManifest(p string, c *harness.Cluster, spec manifestSpec) error {
	q := func(s string) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		return strings.TrimSpace(b.String())
	}
	var b strings.Builder
	b.WriteString("apiVersion: drover/v1\nkind: Cluster\nmetadata:\n  name: bench\nspec:\n")
	fmt.Fprintf(&b, "  installRoot: %s\n", installRoot)
	if spec.ProbeInterval > 0 {
		fmt.Fprintf(&b, "  probeInterval: %s\n", spec.ProbeInterval)
	}
	fmt.Fprintf(&b, "  ssh:\n    user: %s\n    port: 22\n    identityFiles: [%s]\n    knownHostsFile: %s\n    connectTimeout: %s\n",
		c.User, q(c.IdentityFile), q(c.KnownHostsFile), connectTimeout)
	if spec.Concurrency > 0 {
		fmt.Fprintf(&b, "    concurrency: %d\n", spec.Concurrency)
	}
	b.WriteString("  rollout:\n    maxUnavailable: \"100%\"\n  nodes:\n")
	for i, n := range spec.Nodes {
		fmt.Fprintf(&b, "    - {name: %s, address: %s, port: %d, roles: [%s]}\n", n.Name, n.Address, n.Port, roles(i))
	}
	b.WriteString("  components:\n")
	for _, comp := range spec.Components {
		fmt.Fprintf(&b, "    - name: %s\n      version: %s\n", comp.Name, q(comp.Version))
		fmt.Fprintf(&b, "      artifact: {path: %s, sha256: %s}\n", q(comp.Art.Path), comp.Art.SHA256)
		b.WriteString("      files:\n")
		fmt.Fprintf(&b, "        - {path: conf/app.conf, template: %s}\n", q(appConfTemplate))
		fmt.Fprintf(&b, "        - {path: conf/peers.conf, template: %s}\n", q(peersConfTemplate))
		if comp.Health {
			fmt.Fprintf(&b, "      health: {exec: {command: [%s]}, timeout: 5s}\n", q(path.Join(installRoot, "active", comp.Name, "bin", comp.Name)))
		}
	}
	return writeAtomic(p, []byte(b.String()))
}

// writeAtomic replaces a file by rename, as editors and config management
// do, so a watcher never reads half a file.
func writeAtomic(p string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// wipe empties the install root of every node, from the host: the next
// install starts from nothing.
func wipe(nodes []harness.Node) error {
	for _, n := range nodes {
		entries, err := os.ReadDir(n.Root)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(n.Root, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// verifyInstalled checks, from the host, that every node has the
// component as each tool must leave it: the artifact unpacked (its blob
// of the expected size), both rendered files with the expected bytes and
// the active link on the version. It is how the bench knows the peers did
// the same work as drover.
func verifyInstalled(nodes []harness.Node, all []harness.Node, c component, blob int64) error {
	peers := peersConf(all)
	for _, n := range nodes {
		dir := filepath.Join(n.Root, "packages", c.Name, c.Version)
		want := map[string]string{"conf/app.conf": appConf(n.Address, c.Version), "conf/peers.conf": peers, "VERSION": c.Version + "\n"}
		for f, content := range want {
			got, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
			if string(got) != content {
				return fmt.Errorf("node %s: %s is %q, want %q", n.Name, f, got, content)
			}
		}
		if blob > 0 {
			st, err := os.Stat(filepath.Join(dir, "data", "blob.bin"))
			if err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
			if st.Size() != blob {
				return fmt.Errorf("node %s: blob.bin is %d bytes, want %d", n.Name, st.Size(), blob)
			}
		}
		link, err := os.Readlink(filepath.Join(n.Root, "active", c.Name))
		if err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		if path.Base(link) != c.Version {
			return fmt.Errorf("node %s: active/%s points at %s", n.Name, c.Name, link)
		}
	}
	return nil
}
