package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler/plan"
	"github.com/drover-project/drover/test/harness"
)

// seedPhase puts the probe components on every node, as drover apply
// leaves them, so that the probe round, the daemon and the reaction find a
// converged cluster. drover apply itself needs minutes for hundreds of
// nodes on a small machine (see the converge figures), so the layout is
// written from the host into each node's directory, from the compiled
// manifest; a probe round then checks that drover sees every node in
// sync, and drover apply repairs whatever is not (so a change of the
// on-node layout costs time here, never a wrong measurement).
func (b *bench) seedPhase(ctx context.Context) error {
	nodes := b.cluster.Nodes
	if err := wipe(nodes); err != nil {
		return err
	}
	p := filepath.Join(b.work, "seed.yaml")
	if err := writeManifest(p, b.cluster, manifestSpec{Nodes: nodes, Components: b.probeComps, Concurrency: len(nodes)}); err != nil {
		return err
	}
	dc, err := loadDrover(p, b.log)
	if err != nil {
		return err
	}
	start := time.Now()
	byName := map[string]harness.Node{}
	for _, n := range nodes {
		byName[n.Name] = n
	}
	for _, dn := range dc.desired.Nodes {
		if err := seedNode(byName[dn.Name].Root, dc.desired, dn); err != nil {
			return fmt.Errorf("seed %s: %w", dn.Name, err)
		}
	}
	b.logf("wrote the probe components into %d nodes in %s", len(nodes), fmtDur(time.Since(start)))
	if _, err := dc.coldProbe(ctx); err != nil {
		b.logf("drover does not see every seeded node in sync, applying: %v", err)
		if _, err := dc.apply(ctx); err != nil {
			return err
		}
		if _, err := dc.coldProbe(ctx); err != nil {
			return fmt.Errorf("after seeding: %w", err)
		}
	}
	b.res.Seed = time.Since(start)
	return nil
}

// seedNode writes under root (the node's install root on the host) what
// drover's install of each component leaves: the cached artifact, the
// unpacked version dir with its rendered files and .complete, the active
// link and the receipt.
func seedNode(root string, d *plan.Desired, n *plan.DesiredNode) error {
	for _, dir := range []string{"packages", "active", "receipts", "cache"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			return err
		}
	}
	onHost := func(p string) (string, error) {
		rel, ok := strings.CutPrefix(p, d.InstallRoot+"/")
		if !ok {
			return "", fmt.Errorf("%s is outside the install root", p)
		}
		return filepath.Join(root, filepath.FromSlash(rel)), nil
	}
	for _, c := range n.Components {
		vdir, err := onHost(manifests.VersionDir(d.InstallRoot, c.Name, c.Version))
		if err != nil {
			return err
		}
		mark := "none"
		if c.ArtifactPath != "" {
			mark = c.ArtifactSHA256
			cached := filepath.Join(root, "cache", c.ArtifactSHA256+".tar.gz")
			if err := linkOrCopy(c.ArtifactPath, cached); err != nil {
				return err
			}
			if err := untar(c.ArtifactPath, vdir); err != nil {
				return err
			}
		}
		var files []string
		for _, f := range c.Files {
			hp, err := onHost(f.Path)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(hp, f.Content, f.Mode.Perm()); err != nil {
				return err
			}
			if err := os.Chmod(hp, f.Mode.Perm()); err != nil {
				return err
			}
			files = append(files, f.Path)
		}
		if err := os.WriteFile(filepath.Join(vdir, ".complete"), []byte(mark+"\n"), 0o644); err != nil {
			return err
		}
		if err := os.Symlink(path.Join("..", "packages", c.Name, c.Version), filepath.Join(root, "active", c.Name)); err != nil {
			return err
		}
		r, err := json.Marshal(probes.Receipt{
			Component: c.Name, Version: c.Version, ArtifactSHA256: c.ArtifactSHA256, ConfigHash: c.ConfigHash,
			UnitHash: c.UnitHash, Generation: d.Generation, Time: time.Now().UTC(), Files: files,
		})
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(root, "receipts", c.Name+".json"), append(r, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// linkOrCopy hard-links src to dst (cheap; nothing rewrites a cached
// artifact in place), or copies it across file systems.
func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// untar unpacks a bench artifact (regular files and dirs only) into dir.
func untar(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.FromSlash(path.Clean(h.Name)))
		if !strings.HasPrefix(p, filepath.Clean(dir)+string(filepath.Separator)) {
			return fmt.Errorf("%s: entry %q escapes", archive, h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, os.FileMode(h.Mode).Perm())
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, tr); err != nil {
				out.Close()
				return err
			}
			if err := out.Close(); err != nil {
				return err
			}
		}
	}
}
