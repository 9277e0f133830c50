package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ErrMissingTool is wrapped by every error about a tool the harness needs but
// cannot find.
var ErrMissingTool = errors.New("missing tool")

// ErrNotRoot is returned by Boot functions when not running as root.
var ErrNotRoot = errors.New("harness: must run as root (cgroups, nspawn, nftables, mount namespaces)")

// toolPackage names the Debian package that provides a tool, so the error
// tells the reader what to install.
func toolPackage(tool string) string {
	switch tool {
	case "debootstrap":
		return "debootstrap"
	case "systemd-nspawn":
		return "systemd-container"
	case "nft":
		return "nftables"
	case "sshd":
		return "openssh-server"
	case "ssh":
		return "openssh-client"
	case "unshare", "nsenter":
		return "util-linux"
	case "sh":
		return "dash"
	case "bash":
		return "bash"
	}
	return ""
}

// RequireRoot skips the test unless it runs as root: the harness needs root for
// cgroups, systemd-nspawn, nftables and mount namespaces.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("harness: skipped, needs root (run as root, e.g. `sudo go test` or `make test`)")
	}
}

// lookTool finds a tool on PATH or in the sbin dirs that a non-login PATH may
// lack. The absolute path matters for sshd, which re-executes itself.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs, nil
		}
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	pkg := toolPackage(name)
	if pkg == "" {
		return "", fmt.Errorf("harness: %w: %s", ErrMissingTool, name)
	}
	return "", fmt.Errorf("harness: %w: %s (Debian package %s; `make test` installs it)", ErrMissingTool, name, pkg)
}

// lookTools resolves several tools at once, reporting the first missing one.
func lookTools(names ...string) (map[string]string, error) {
	paths := make(map[string]string, len(names))
	for _, n := range names {
		p, err := lookTool(n)
		if err != nil {
			return nil, err
		}
		paths[n] = p
	}
	return paths, nil
}
