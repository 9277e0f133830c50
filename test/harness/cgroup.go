package harness

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupBase is the directory under each hierarchy that holds our cgroups:
// <hierarchy>/drover-test/<cluster>/<node>.
const cgroupBase = "drover-test"

// cgroupRoots are the mount points of the hierarchies a node's cgroup is made in.
type cgroupRoots struct {
	// v2 is the cgroup2 mount: /sys/fs/cgroup on a unified host,
	// /sys/fs/cgroup/unified on a hybrid one. cgroup.kill lives here.
	v2 string
	// v1Systemd is the name=systemd v1 mount on a hybrid host ("" otherwise).
	// systemd-nspawn places its payload relative to the cgroup it finds here,
	// so a node must be moved into it too or all nodes share one payload tree.
	v1Systemd string
}

// findCgroupRoots reads /proc/self/mountinfo for the cgroup2 mount and the
// name=systemd v1 mount.
func findCgroupRoots() (cgroupRoots, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return cgroupRoots{}, fmt.Errorf("harness: find cgroups: %w", err)
	}
	defer f.Close()
	var r cgroupRoots
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		mnt, fstype, opts, ok := parseMountinfoLine(sc.Text())
		if !ok {
			continue
		}
		switch {
		case fstype == "cgroup2" && r.v2 == "":
			r.v2 = mnt
		case fstype == "cgroup" && r.v1Systemd == "" && hasOpt(opts, "name=systemd"):
			r.v1Systemd = mnt
		}
	}
	if err := sc.Err(); err != nil {
		return cgroupRoots{}, fmt.Errorf("harness: find cgroups: %w", err)
	}
	if r.v2 == "" {
		return cgroupRoots{}, errors.New("harness: no cgroup2 hierarchy mounted (need /sys/fs/cgroup or /sys/fs/cgroup/unified)")
	}
	return r, nil
}

// parseMountinfoLine returns the mount point, fs type and super options of one
// /proc/self/mountinfo line.
func parseMountinfoLine(line string) (mnt, fstype, superOpts string, ok bool) {
	pre, post, found := strings.Cut(line, " - ")
	if !found {
		return "", "", "", false
	}
	f := strings.Fields(pre)
	g := strings.Fields(post)
	if len(f) < 5 || len(g) < 3 {
		return "", "", "", false
	}
	return unescapeMount(f[4]), g[0], g[2], true
}

// unescapeMount undoes the octal escapes mountinfo uses for space, tab, \n and \\.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func hasOpt(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// clusterCgroups returns the cluster-level cgroup dirs in each hierarchy.
func (r cgroupRoots) clusterDirs(cluster string) []string {
	dirs := []string{filepath.Join(r.v2, cgroupBase, cluster)}
	if r.v1Systemd != "" {
		dirs = append(dirs, filepath.Join(r.v1Systemd, cgroupBase, cluster))
	}
	return dirs
}

// killCgroup kills every process in a v2 cgroup subtree and waits until it is
// empty. cgroup.kill (Linux 5.14+) does it atomically, so a process forking
// cannot escape; older kernels fall back to SIGKILL rounds.
func killCgroup(dir string, timeout time.Duration) error {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	err := writeExisting(filepath.Join(dir, "cgroup.kill"), "1")
	useKill := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("harness: kill cgroup %s: %w", dir, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		if !cgroupPopulated(dir) {
			return nil
		}
		if !useKill {
			for _, pid := range cgroupPids(dir) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("harness: cgroup %s still has processes %v after %v", dir, cgroupPids(dir), timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cgroupPopulated tells whether any process is left in the subtree. v2 says so
// in cgroup.events; v1 (or a missing file) falls back to listing pids.
func cgroupPopulated(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "populated "); ok {
				return strings.TrimSpace(v) != "0"
			}
		}
	}
	return len(cgroupPids(dir)) > 0
}

// cgroupPids lists every pid in a cgroup subtree.
func cgroupPids(dir string) []int {
	var pids []int
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			return nil
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// removeCgroupTree removes a cgroup dir and its descendants, deepest first
// (cgroup dirs can only be rmdir'ed when empty of children). A cgroup whose
// last process has only just died may refuse with EBUSY for a moment.
func removeCgroupTree(dir string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var dirs []string
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("harness: remove cgroup %s: %w", dir, err)
		}
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		var last error
		for _, d := range dirs {
			if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
				last = fmt.Errorf("harness: remove cgroup %s: %w", d, err)
			}
		}
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return last
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// makeCgroup creates a cgroup dir (and its parents) in one hierarchy.
func makeCgroup(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("harness: create cgroup: %w", err)
	}
	return nil
}

// writeExisting writes to a file that must already exist: pseudo-files in
// cgroupfs and procfs cannot be created, and O_CREAT would hide ENOENT.
func writeExisting(path, data string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
