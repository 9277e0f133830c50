package inventory

import (
	"os"
)

// readLocalFile reads one of the operator's files on the bootstrap host
// (a private or public key, an ssh_config). Every such read goes through
// here, so checks on what may be read live in one place.
func readLocalFile(path string) ([]byte, error) {
	return os.ReadFile(path)
}
