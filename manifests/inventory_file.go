package manifests

import (
	"bufio"
	"bytes"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
)

// ProblemFile splits a problem found in the manifest at manifestPath into
// the file it is in and the field path inside that file: problems in the
// nodes of an inventoryFile carry "INVENTORY:nodes[0].address" (Validate
// writes them so), and are in the inventory file, resolved as Load
// resolves it. Field paths never hold a colon (names cannot).
func ProblemFile(manifestPath string, p Problem) (file, path string) {
	i := strings.LastIndex(p.Path, ":")
	if i < 0 {
		return manifestPath, p.Path
	}
	return resolve(filepath.Dir(manifestPath), p.Path[:i]), p.Path[i+1:]
}

// ErrAnsibleInventory is why an inventoryFile in Ansible's INI format is
// refused: drover import ansible converts one.
var ErrAnsibleInventory = errors.New("this looks like an Ansible INI inventory, not drover's YAML: see `drover import ansible`")

var (
	iniSection = regexp.MustCompile(`^\[[A-Za-z0-9_.:-]+\]$`)
	iniHostVar = regexp.MustCompile(`(^|\s)ansible_[a-z_]+=`)
)

// looksLikeAnsibleINI reports whether data reads as an Ansible INI
// inventory: its first line that is not blank or a comment is a
// [group] header, or a host line carries ansible_*= variables. Neither
// can begin a drover inventory, which is a YAML mapping with nodes:.
func looksLikeAnsibleINI(data []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		return iniSection.MatchString(line) || iniHostVar.MatchString(line)
	}
	return false
}
