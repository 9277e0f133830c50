package manifests

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// ErrNotRegular is wrapped by the error for a file drover reads that is
// a FIFO, a device, a socket or a directory. Reading any of those can
// block forever (a FIFO nobody writes) or never end (/dev/zero), so every
// file a manifest names is refused at once instead.
var ErrNotRegular = fmt.Errorf("not a regular file")

// OpenRegular opens path for reading only if it is a regular file (after
// symlinks). The open itself is non-blocking, so a FIFO with no writer
// is refused rather than waited on; the check is on the opened file, so
// nothing can swap the path between check and read.
func OpenRegular(path string) (*os.File, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := regular(path, st); err != nil {
		f.Close()
		return nil, err
	}
	// O_NONBLOCK means nothing for a regular file, but clear it so the
	// descriptor behaves like any other.
	if err := syscall.SetNonblock(fd, false); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// CheckRegular reports an error unless path is missing or a regular
// file, for files a library opens by name (known_hosts). A missing file
// is left for the caller to handle as it always has.
func CheckRegular(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return nil
	}
	return regular(path, st)
}

func regular(path string, st fs.FileInfo) error {
	if st.Mode().IsRegular() {
		return nil
	}
	kind := "a special file"
	switch m := st.Mode(); {
	case m.IsDir():
		kind = "a directory"
	case m&fs.ModeNamedPipe != 0:
		kind = "a FIFO"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	case m&fs.ModeDevice != 0:
		kind = "a device"
	}
	return fmt.Errorf("%s: %w (it is %s)", path, ErrNotRegular, kind)
}

// ReadRegular reads a regular file of at most limit bytes.
func ReadRegular(path string, limit int64) ([]byte, error) {
	f, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAtMost(f, path, limit)
}
