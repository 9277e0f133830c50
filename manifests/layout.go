package manifests

import (
	"path"
	"slices"
	"strings"
)

// Names drover writes for itself on a node. A version dir holds the
// unpacked artifact, the manifest's relative files, and these; the
// reconciler writes them and drops an artifact's own copies at unpack,
// and validation refuses a manifest file that would take one, since a
// file there is trusted later (a rollback copies .drover-files/<p> to
// <p>, systemd reads .drover-env).
const (
	// CompleteMarker is written last in a version dir (docs/DESIGN.md, "On a node").
	CompleteMarker = ".complete"
	// KeptUnitName is the unit text the version ran with.
	KeptUnitName = ".drover-unit"
	// KeptFilesDir mirrors the files the version wrote outside its dir.
	KeptFilesDir = ".drover-files"
	// EnvFileName holds service.environment, mode 0600: the unit names it
	// with EnvironmentFile= instead of carrying the values itself.
	EnvFileName = ".drover-env"
	// ReservedPrefix starts every other name drover makes: its temp files
	// beside a file it writes, and any name it may add to a version dir.
	ReservedPrefix = ".drover-"
	// RootMarker marks an install root as drover's (reconciler/onnode.go).
	RootMarker = ".drover-root"
)

// VersionDirReserved are the names at the top of a version dir that are
// drover's own; any other name starting with ReservedPrefix is too.
var VersionDirReserved = []string{CompleteMarker, KeptUnitName, KeptFilesDir, EnvFileName}

// reservedTop is the reserved name a relative file path lies in, or "".
func reservedTop(clean string) string {
	top, _, _ := strings.Cut(clean, "/")
	if slices.Contains(VersionDirReserved, top) || strings.HasPrefix(top, ReservedPrefix) {
		return top
	}
	return ""
}

// systemDirs are directories of the Filesystem Hierarchy Standard (and
// Debian's merged-/usr layout) that hold what the system and other
// packages put there. drover deletes what it no longer needs inside its
// install root (old versions, cached artifacts), so the root must be a
// directory of its own, never one of these.
var systemDirs = []string{
	"/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media", "/mnt",
	"/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var",
	"/usr/bin", "/usr/include", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libexec", "/usr/local",
	"/usr/local/bin", "/usr/local/etc", "/usr/local/lib", "/usr/local/sbin", "/usr/local/share", "/usr/sbin",
	"/usr/share", "/usr/src",
	"/var/backups", "/var/cache", "/var/lib", "/var/local", "/var/lock", "/var/log", "/var/mail", "/var/opt",
	"/var/run", "/var/spool", "/var/tmp",
}

// kernelFSDirs hold the kernel's file systems: no install root belongs
// anywhere below them. (/dev and /run are refused themselves only: the
// reconciler's tests run nodes at /dev/fd/3/..., and a root below /run
// is merely lost at boot.)
var kernelFSDirs = []string{"/proc", "/sys"}

// IsSystemDir reports whether dir (clean, absolute) is a system directory
// or lies below a kernel file system.
func IsSystemDir(dir string) bool {
	if slices.Contains(systemDirs, dir) {
		return true
	}
	for _, p := range kernelFSDirs {
		if strings.HasPrefix(dir, p+"/") {
			return true
		}
	}
	return path.Clean(dir) == "/"
}
