package inventory

import "github.com/drover-project/drover/manifests"

// maxLocalFileBytes bounds a read of one of the operator's files; real keys
// and ssh_configs are a few KB.
const maxLocalFileBytes = 1 << 20

// readLocalFile reads one of the operator's files on the bootstrap host
// (a private or public key, an ssh_config). Every such read goes through
// here, so checks on what may be read live in one place: it must be a
// regular file (a FIFO or a device would block or never end) of bounded size.
func readLocalFile(path string) ([]byte, error) {
	return manifests.ReadRegular(path, maxLocalFileBytes)
}
