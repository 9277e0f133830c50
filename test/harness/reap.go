package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// nspawnPropagateDir is where systemd-nspawn keeps a per-machine dir on the
// host; a killed nspawn leaves its dir behind.
const nspawnPropagateDir = "/run/systemd/nspawn/propagate"

// reapStale tears down every cluster in stateDir whose owner process is gone,
// plus cgroups and nftables tables of ours that no live cluster claims, and
// returns the live clusters. Callers hold the state-dir lock.
func reapStale(stateDir string, cg cgroupRoots, nft string, logf func(string, ...any)) ([]clusterRecord, error) {
	ents, err := os.ReadDir(stateDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("harness: read state dir: %w", err)
	}
	var live []clusterRecord
	liveNames := map[string]bool{}
	var errs []error
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(stateDir, e.Name())
		rec, err := readRecord(dir)
		if err == nil && rec.ownerAlive() {
			live = append(live, rec)
			liveNames[rec.Name] = true
			continue
		}
		if rec.Name == "" {
			rec.Name = e.Name()
		}
		logf("harness: reaping cluster %s left by dead process %d", rec.Name, rec.OwnerPID)
		if err := reapCluster(dir, rec, cg, nft); err != nil {
			errs = append(errs, err)
		}
	}
	// Cgroups whose state dir is gone (removed by hand, or a crash between
	// removing the dir and the cgroups).
	for _, root := range []string{cg.v2, cg.v1Systemd} {
		if root == "" {
			continue
		}
		ents, _ := os.ReadDir(filepath.Join(root, cgroupBase))
		for _, e := range ents {
			if e.IsDir() && !liveNames[e.Name()] {
				logf("harness: reaping orphan cgroup %s", e.Name())
				errs = append(errs, reapCgroups(cg, e.Name())...)
			}
		}
	}
	tables, err := listNftTables(nft)
	if err != nil {
		errs = append(errs, err)
	}
	liveTables := map[string]bool{}
	for n := range liveNames {
		liveTables[nftTableName(n)] = true
	}
	for _, t := range tables {
		if !liveTables[t] {
			logf("harness: deleting orphan nftables table %s", t)
			if err := deleteNftTable(nft, t); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return live, errors.Join(errs...)
}

// reapCluster kills and removes everything a cluster left behind.
func reapCluster(dir string, rec clusterRecord, cg cgroupRoots, nft string) error {
	// Recorded processes first (cmdline still naming the dir proves the pid
	// was not reused), then the cgroups, which also catch anything unrecorded
	// and everything inside the containers.
	killRecorded(dir, dir)
	errs := reapCgroups(cg, rec.Name)
	// A process outside our cgroups that still names the dir (e.g. started
	// before its cgroup move): kill it by cmdline.
	for _, p := range scanProcs(func(cl string) bool { return strings.Contains(cl, dir+"/") }) {
		_ = killPid(p.PID)
	}
	if err := deleteNftTable(nft, nftTableName(rec.Name)); err != nil {
		errs = append(errs, err)
	}
	for _, n := range rec.Nodes {
		_ = os.RemoveAll(filepath.Join(nspawnPropagateDir, n))
	}
	if err := removeTree(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// reapCgroups kills a cluster's cgroup subtree and removes it in every hierarchy.
func reapCgroups(cg cgroupRoots, cluster string) []error {
	var errs []error
	dirs := cg.clusterDirs(cluster)
	if err := killCgroup(dirs[0], 10*time.Second); err != nil {
		errs = append(errs, err)
	}
	for _, d := range dirs {
		if err := removeCgroupTree(d, 5*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Cleanup tears down leftovers in stateDir ("" = DefaultStateDir): clusters
// whose owner died, orphan cgroups and nftables tables. With all, clusters
// whose owner still runs are torn down too (their owner will see its nodes
// vanish). It returns the names of the clusters removed.
func Cleanup(ctx context.Context, stateDir string, all bool) ([]string, error) {
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	cg, err := findCgroupRoots()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, fmt.Errorf("harness: state dir: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(stateDir, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	nft, _ := lookTool("nft")

	before := clusterDirs(stateDir)
	live, err := reapStale(stateDir, cg, nft, func(string, ...any) {})
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if all {
		for _, r := range live {
			dir := filepath.Join(stateDir, r.Name)
			if err := reapCluster(dir, r, cg, nft); err != nil {
				errs = append(errs, err)
			}
		}
	}
	after := map[string]bool{}
	for _, n := range clusterDirs(stateDir) {
		after[n] = true
	}
	var removed []string
	for _, n := range before {
		if !after[n] {
			removed = append(removed, n)
		}
	}
	return removed, errors.Join(errs...)
}

func clusterDirs(stateDir string) []string {
	ents, _ := os.ReadDir(stateDir)
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}
